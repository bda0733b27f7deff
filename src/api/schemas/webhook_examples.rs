//! Real deliveries, one per event, captured from a gateway run (the `webhooks` section's
//! examples); `tests/webhooks_schema.rs` checks that each still validates against its schema.

use serde_json::Value;

fn parse(raw: &str) -> Value {
    serde_json::from_str(raw).unwrap_or(Value::Null)
}

pub fn group_join() -> Value {
    parse(
        r#"{"id":"evt_01m8psh966bpbnc58w96e604bw","timestamp":1796061308102,"event":"group.join","session":"default","metadata":{"team":"bots"},"me":{"id":"24327297149@c.us","pushName":"default"},"payload":{"id":"false_120363704299413096@g.us_1-0_24327297149@c.us","timestamp":1796061308,"chatId":"120363704299413096@g.us","author":"24327297149@c.us","type":"create","recipientIds":["24327297149@c.us","71748178650@c.us"],"group":{"id":"120363704299413096@g.us","subject":"Team"}},"engine":"LOCAL","environment":{"version":"0.1.0","engine":"LOCAL","tier":"CORE","browser":"","platform":"linux/x64","worker":{"id":"vm"}}}"#,
    )
}

pub fn group_leave() -> Value {
    parse(
        r#"{"id":"evt_01m8psh9atngkh9y8trnc541nr","timestamp":1796061308250,"event":"group.leave","session":"bob","me":{"id":"71748178650@c.us","pushName":"bob"},"payload":{"id":"false_120363704299413096@g.us_9-0_24327297149@c.us","timestamp":1796061308,"chatId":"120363704299413096@g.us","author":"24327297149@c.us","type":"remove","recipientIds":["71748178650@c.us"],"group":{"id":"120363704299413096@g.us","subject":"Team 2"}},"engine":"LOCAL","environment":{"version":"0.1.0","engine":"LOCAL","tier":"CORE","browser":"","platform":"linux/x64","worker":{"id":"vm"}}}"#,
    )
}

pub fn group_v2_join() -> Value {
    parse(
        r#"{"id":"evt_01m8psh966nsgzh65jbrjt6ec4","timestamp":1796061308102,"event":"group.v2.join","session":"default","metadata":{"team":"bots"},"me":{"id":"24327297149@c.us","pushName":"default"},"payload":{"timestamp":1796061308,"group":{"id":"120363704299413096@g.us","subject":"Team","description":"","invite":"https://chat.whatsapp.com/ul2tG36iIvAHbCeQNjbShy","membersCanAddNewMember":false,"membersCanSendMessages":true,"newMembersApprovalRequired":false,"infoAdminOnly":false,"owner":"24327297149@c.us","creation":1796061308,"size":2,"participants":[{"id":"24327297149@c.us","pn":"24327297149@c.us","role":"superadmin"},{"id":"71748178650@c.us","pn":"71748178650@c.us","role":"participant"}]},"by":"24327297149@c.us","_data":{"author":"24327297149@c.us","operation":"create"}},"engine":"LOCAL","environment":{"version":"0.1.0","engine":"LOCAL","tier":"CORE","browser":"","platform":"linux/x64","worker":{"id":"vm"}}}"#,
    )
}

pub fn group_v2_leave() -> Value {
    parse(
        r#"{"id":"evt_01m8psh9at6e2gxde5ebqpgw7v","timestamp":1796061308250,"event":"group.v2.leave","session":"bob","me":{"id":"71748178650@c.us","pushName":"bob"},"payload":{"timestamp":1796061308,"group":{"id":"120363704299413096@g.us"},"by":"24327297149@c.us","_data":{"author":"24327297149@c.us","operation":"remove"}},"engine":"LOCAL","environment":{"version":"0.1.0","engine":"LOCAL","tier":"CORE","browser":"","platform":"linux/x64","worker":{"id":"vm"}}}"#,
    )
}

pub fn group_v2_participants() -> Value {
    parse(
        r#"{"id":"evt_01m8psh99ksywcmsyym8zcge91","timestamp":1796061308211,"event":"group.v2.participants","session":"default","metadata":{"team":"bots"},"me":{"id":"24327297149@c.us","pushName":"default"},"payload":{"type":"promote","timestamp":1796061308,"group":{"id":"120363704299413096@g.us"},"participants":[{"id":"33333333333@c.us","pn":"33333333333@c.us","role":"admin"}],"by":"24327297149@c.us","_data":{"author":"24327297149@c.us","operation":"promote"}},"engine":"LOCAL","environment":{"version":"0.1.0","engine":"LOCAL","tier":"CORE","browser":"","platform":"linux/x64","worker":{"id":"vm"}}}"#,
    )
}

pub fn group_v2_update() -> Value {
    parse(
        r#"{"id":"evt_01m8psh996f61pxarhjshxraxg","timestamp":1796061308198,"event":"group.v2.update","session":"default","metadata":{"team":"bots"},"me":{"id":"24327297149@c.us","pushName":"default"},"payload":{"timestamp":1796061308,"group":{"id":"120363704299413096@g.us","subject":"Team 2"},"by":"24327297149@c.us","_data":{"author":"24327297149@c.us","operation":"subject"}},"engine":"LOCAL","environment":{"version":"0.1.0","engine":"LOCAL","tier":"CORE","browser":"","platform":"linux/x64","worker":{"id":"vm"}}}"#,
    )
}

pub fn join_request() -> Value {
    parse(
        r#"{"id":"evt_01m8psh9a7yze7544h7bfdgcbq","timestamp":1796061308231,"event":"group.v2.participants.join-request","session":"default","metadata":{"team":"bots"},"me":{"id":"24327297149@c.us","pushName":"default"},"payload":{"action":"created","requesterId":"44444444444@c.us","requesterPn":"44444444444@c.us","requestMethod":"non_admin_add","timestamp":1796061308,"group":{"id":"120363704299413096@g.us"},"_data":{"author":"71748178650@c.us","operation":"add"}},"engine":"LOCAL","environment":{"version":"0.1.0","engine":"LOCAL","tier":"CORE","browser":"","platform":"linux/x64","worker":{"id":"vm"}}}"#,
    )
}

pub fn session_status() -> Value {
    parse(
        r#"{"id":"evt_01m8psh920xsgmb4vhf8dvpst4","timestamp":1796061307968,"event":"session.status","session":"default","metadata":{"team":"bots"},"me":{"id":"24327297149@c.us","pushName":"default"},"payload":{"name":"default","status":"WORKING","statuses":[{"status":"STARTING","timestamp":1796061307968},{"status":"WORKING","timestamp":1796061307968}]},"engine":"LOCAL","environment":{"version":"0.1.0","engine":"LOCAL","tier":"CORE","browser":"","platform":"linux/x64","worker":{"id":"vm"}}}"#,
    )
}
