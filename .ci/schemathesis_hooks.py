"""Schemathesis hooks for wagate (loaded through SCHEMATHESIS_HOOKS by .ci/schemathesis.sh)."""

import schemathesis


def _urls_repeat(body) -> bool:
    config = body.get("config") if isinstance(body, dict) else None
    hooks = config.get("webhooks") if isinstance(config, dict) else None
    if not isinstance(hooks, list):
        return False
    urls = [repr(h.get("url")) for h in hooks if isinstance(h, dict) and "url" in h]
    return len(urls) != len(set(urls))


@schemathesis.hook
def filter_case(context, case) -> bool:
    """JSON Schema cannot say that no two webhooks of a session share a URL (uniqueness by key);
    the gateway answers such a config with a 400, so generated configs never repeat a URL."""
    return not _urls_repeat(case.body)
