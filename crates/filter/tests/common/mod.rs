//! Fixture traces: segment documents parsed and summarised by `roentgen-model`, so the
//! filter tests run over what the real derivation produces.
//!
//! | # | trace | shape |
//! |---|---|---|
//! | 1 | reference T1 | web (EC2) → DynamoDB (throttled, inferred), → api.backend (answered), render subsegment faulted (ValueError) |
//! | 2 | reference T2 | worker, in progress |
//! | 3 | checkout fault | web → orders (ECS) → payments, all 5xx, DatabaseError in payments, user bob |
//! | 4 | happy order | web → orders → payments → DynamoDB (inferred, no table), all ok, user alice |
//! | 5 | throttled | web answered 429, user carol |
//! | 6 | not found | web → orders, both 404 |
//! | 7 | slow report | web → orders → payments → bank.example.com (remote, inferred), 6.5 s |
//! | 8 | lambda | random-name (AWS::Lambda) → random-name (AWS::Lambda::Function) with a KeyError, user erin |
//! | 9 | partial | web done, orders still in progress |
//! | 10 | inventory | inventory (EC2) with a faulted SQL remote call, separately sent cache subsegment, user dave |
//! | 11 | quiet batch | one bare segment |

#![allow(dead_code)]

use roentgen_model::{Document, TraceSummary, derive};

/// Documents of each fixture trace, in order 1..=11.
pub(crate) const TRACES: &[&[&str]] = &[
    // 1: reference T1 = {S1, S2, S3}.
    &[
        r#"{"name":"web","id":"70de5b6f19ff9a0a","trace_id":"1-5759e988-bd862e3fe1be46a994272793",
 "start_time":1465510280.0,"end_time":1465510281.25,"origin":"AWS::EC2::Instance","user":"alice",
 "http":{"request":{"method":"GET","url":"https://web.example.com/api/game/42","client_ip":"10.0.0.1",
 "user_agent":"curl/8"},"response":{"status":200,"content_length":12}},
 "annotations":{"gameid":"817DL6VO","age":31,"vip":true},
 "subsegments":[{"id":"53995c3f42cd8ad8","name":"DynamoDB","namespace":"aws","start_time":1465510280.1,
   "end_time":1465510280.4,"throttle":true,"error":true,"aws":{"operation":"GetItem","table_name":"games"},
   "http":{"response":{"status":429}}},
  {"id":"6b1b6b3f42cd8a01","name":"api.backend.example.com","namespace":"remote",
   "start_time":1465510280.5,"end_time":1465510281.1,"http":{"request":{"method":"POST",
   "url":"https://api.backend.example.com/v2/x"},"response":{"status":200}}}]}"#,
        r#"{"name":"api.backend.example.com","id":"a1b2c3d4e5f60718","trace_id":"1-5759e988-bd862e3fe1be46a994272793",
 "parent_id":"6b1b6b3f42cd8a01","start_time":1465510280.55,"end_time":1465510281.05,
 "http":{"request":{"method":"POST","url":"https://api.backend.example.com/v2/x"},"response":{"status":200}}}"#,
        r#"{"type":"subsegment","id":"0f0e0d0c0b0a0908","trace_id":"1-5759e988-bd862e3fe1be46a994272793",
 "parent_id":"70de5b6f19ff9a0a","name":"render","start_time":1465510281.1,"end_time":1465510281.2,
 "fault":true,"cause":{"working_directory":"/app","exceptions":[{"id":"1234567890abcdef",
 "type":"ValueError","message":"bad template","stack":[{"path":"app.py","line":10,"label":"render"}]}]}}"#,
    ],
    // 2: reference T2 = {S4}.
    &[
        r#"{"name":"worker","id":"1111222233334444","trace_id":"1-5759e999-000000000000000000000001",
 "start_time":1465510300.0,"in_progress":true}"#,
    ],
    // 3: checkout fault, web → orders → payments.
    &[
        r#"{"name":"web","id":"a300000000000001","trace_id":"1-65000003-000000000000000000000003",
 "start_time":1700000300.0,"end_time":1700000302.0,"origin":"AWS::EC2::Instance","user":"bob","fault":true,
 "http":{"request":{"method":"POST","url":"https://shop.example.com/checkout"},"response":{"status":500}},
 "aws":{"ec2":{"instance_id":"i-0abc","availability_zone":"us-east-1a"}},
 "annotations":{"order_id":"o-1001","amount":99.5,"express":false},
 "subsegments":[{"id":"a300000000000002","name":"orders","namespace":"remote","start_time":1700000300.1,
   "end_time":1700000301.9,"fault":true,
   "http":{"request":{"method":"POST","url":"https://orders.internal/orders"},"response":{"status":500}}}]}"#,
        r#"{"name":"orders","id":"b300000000000001","trace_id":"1-65000003-000000000000000000000003",
 "parent_id":"a300000000000002","start_time":1700000300.2,"end_time":1700000301.8,"origin":"AWS::ECS::Container",
 "fault":true,"aws":{"ecs":{"container":"orders-1","container_arn":"arn:aws:ecs:us-east-1:123456789012:container/orders-1"}},
 "http":{"request":{"method":"POST","url":"https://orders.internal/orders"},"response":{"status":500}},
 "subsegments":[{"id":"b300000000000002","name":"payments","namespace":"remote","start_time":1700000300.3,
   "end_time":1700000301.7,"fault":true,
   "http":{"request":{"method":"POST","url":"https://payments.internal/pay"},"response":{"status":503}}}]}"#,
        r#"{"name":"payments","id":"c300000000000001","trace_id":"1-65000003-000000000000000000000003",
 "parent_id":"b300000000000002","start_time":1700000300.4,"end_time":1700000301.6,"fault":true,
 "http":{"request":{"method":"POST","url":"https://payments.internal/pay"},"response":{"status":503}},
 "annotations":{"retry":2},
 "cause":{"exceptions":[{"id":"c300000000000009","type":"DatabaseError","message":"deadlock detected"}]}}"#,
    ],
    // 4: happy order, web → orders → payments → DynamoDB.
    &[
        r#"{"name":"web","id":"a400000000000001","trace_id":"1-65000004-000000000000000000000004",
 "start_time":1700000400.0,"end_time":1700000400.8,"origin":"AWS::EC2::Instance","user":"alice",
 "http":{"request":{"method":"GET","url":"https://shop.example.com/orders/7","user_agent":"Mozilla/5.0 (X11)",
 "client_ip":"203.0.113.7"},"response":{"status":200}},
 "aws":{"ec2":{"instance_id":"i-0def","availability_zone":"us-east-1b"}},
 "annotations":{"order_id":"o-1002","amount":12,"express":true},
 "subsegments":[{"id":"a400000000000002","name":"orders","namespace":"remote","start_time":1700000400.05,
   "end_time":1700000400.75,"http":{"request":{"method":"GET","url":"https://orders.internal/orders/7"},
   "response":{"status":200}}}]}"#,
        r#"{"name":"orders","id":"b400000000000001","trace_id":"1-65000004-000000000000000000000004",
 "parent_id":"a400000000000002","start_time":1700000400.1,"end_time":1700000400.7,"origin":"AWS::ECS::Container",
 "http":{"request":{"method":"GET","url":"https://orders.internal/orders/7"},"response":{"status":200}},
 "subsegments":[{"id":"b400000000000002","name":"payments","namespace":"remote","start_time":1700000400.15,
   "end_time":1700000400.65,"http":{"response":{"status":200}}}]}"#,
        r#"{"name":"payments","id":"c400000000000001","trace_id":"1-65000004-000000000000000000000004",
 "parent_id":"b400000000000002","start_time":1700000400.2,"end_time":1700000400.6,
 "subsegments":[{"id":"c400000000000002","name":"DynamoDB","namespace":"aws","start_time":1700000400.25,
   "end_time":1700000400.5,"aws":{"operation":"Query"},"http":{"response":{"status":200}}}]}"#,
    ],
    // 5: throttled at the entry.
    &[
        r#"{"name":"web","id":"a500000000000001","trace_id":"1-65000005-000000000000000000000005",
 "start_time":1700000500.0,"end_time":1700000500.05,"origin":"AWS::EC2::Instance","user":"carol",
 "error":true,"throttle":true,
 "http":{"request":{"method":"GET","url":"https://shop.example.com/api/limited","user_agent":"python-requests/2.31",
 "client_ip":"198.51.100.23"},"response":{"status":429}},
 "annotations":{"tenant":"acme"}}"#,
    ],
    // 6: not found, web → orders, both 404.
    &[
        r#"{"name":"web","id":"a600000000000001","trace_id":"1-65000006-000000000000000000000006",
 "start_time":1700000600.0,"end_time":1700000600.3,"origin":"AWS::EC2::Instance","error":true,
 "http":{"request":{"method":"GET","url":"https://shop.example.com/orders/404"},"response":{"status":404}},
 "annotations":{"tenant":"globex"},
 "subsegments":[{"id":"a600000000000002","name":"orders","namespace":"remote","start_time":1700000600.01,
   "end_time":1700000600.2,"error":true,"http":{"response":{"status":404}}}]}"#,
        r#"{"name":"orders","id":"b600000000000001","trace_id":"1-65000006-000000000000000000000006",
 "parent_id":"a600000000000002","start_time":1700000600.02,"end_time":1700000600.19,"origin":"AWS::ECS::Container",
 "error":true,"http":{"request":{"method":"GET","url":"https://orders.internal/orders/404"},"response":{"status":404}}}"#,
    ],
    // 7: slow report, web → orders → payments → bank.example.com.
    &[
        r#"{"name":"web","id":"a700000000000001","trace_id":"1-65000007-000000000000000000000007",
 "start_time":1700000700.0,"end_time":1700000706.5,"origin":"AWS::EC2::Instance",
 "http":{"request":{"method":"GET","url":"https://shop.example.com/report","user_agent":"curl/8"},"response":{"status":200}},
 "annotations":{"retry":3,"vip":true},
 "subsegments":[{"id":"a700000000000002","name":"orders","namespace":"remote","start_time":1700000700.1,
   "end_time":1700000706.4}]}"#,
        r#"{"name":"orders","id":"b700000000000001","trace_id":"1-65000007-000000000000000000000007",
 "parent_id":"a700000000000002","start_time":1700000700.2,"end_time":1700000706.3,"origin":"AWS::ECS::Container",
 "subsegments":[{"id":"b700000000000002","name":"payments","namespace":"remote","start_time":1700000700.3,
   "end_time":1700000706.2}]}"#,
        r#"{"name":"payments","id":"c700000000000001","trace_id":"1-65000007-000000000000000000000007",
 "parent_id":"b700000000000002","start_time":1700000700.4,"end_time":1700000706.1,
 "subsegments":[{"id":"c700000000000002","name":"bank.example.com","namespace":"remote","start_time":1700000700.5,
   "end_time":1700000705.9,"http":{"request":{"method":"POST","url":"https://bank.example.com/charge"},
   "response":{"status":200}}}]}"#,
    ],
    // 8: Lambda service node → function node; the function fails with a KeyError.
    &[
        r#"{"name":"random-name","id":"a800000000000001","trace_id":"1-65000008-000000000000000000000008",
 "start_time":1700000800.0,"end_time":1700000801.0,"origin":"AWS::Lambda",
 "subsegments":[{"id":"a800000000000002","name":"Invocation","start_time":1700000800.01,"end_time":1700000800.99}]}"#,
        r#"{"name":"random-name","id":"b800000000000001","trace_id":"1-65000008-000000000000000000000008",
 "parent_id":"a800000000000002","start_time":1700000800.02,"end_time":1700000800.98,
 "origin":"AWS::Lambda::Function","user":"erin","error":true,
 "cause":{"exceptions":[{"type":"KeyError","message":"'id'"}]}}"#,
    ],
    // 9: partial, web done and orders in progress.
    &[
        r#"{"name":"web","id":"a900000000000001","trace_id":"1-65000009-000000000000000000000009",
 "start_time":1700000900.0,"end_time":1700000901.0,"origin":"AWS::EC2::Instance",
 "http":{"request":{"method":"GET","url":"https://shop.example.com/cart"},"response":{"status":200}},
 "annotations":{"cart_size":3},
 "subsegments":[{"id":"a900000000000002","name":"orders","namespace":"remote","start_time":1700000900.1,
   "end_time":1700000900.9}]}"#,
        r#"{"name":"orders","id":"b900000000000001","trace_id":"1-65000009-000000000000000000000009",
 "parent_id":"a900000000000002","start_time":1700000900.2,"in_progress":true,"origin":"AWS::ECS::Container"}"#,
    ],
    // 10: inventory with a faulted SQL call and a separately sent cache subsegment.
    &[
        r#"{"name":"inventory","id":"aa00000000000001","trace_id":"1-6500000a-00000000000000000000000a",
 "start_time":1700001000.0,"end_time":1700001000.5,"origin":"AWS::EC2::Instance","user":"dave",
 "http":{"request":{"method":"PUT","url":"https://inventory.example.com/items/9","client_ip":"192.168.1.10"},
 "response":{"status":200}},
 "aws":{"ec2":{"instance_id":"i-0aaa","availability_zone":"eu-west-1c"}},
 "subsegments":[{"id":"aa00000000000002","name":"postgres@db.internal","namespace":"remote",
   "start_time":1700001000.1,"end_time":1700001000.3,"fault":true,
   "sql":{"url":"postgresql://db.internal:5432/inventory","database_type":"PostgreSQL"},
   "cause":{"exceptions":[{"type":"OperationalError","message":"connection reset","remote":true}]}}]}"#,
        r#"{"type":"subsegment","id":"aa00000000000003","trace_id":"1-6500000a-00000000000000000000000a",
 "parent_id":"aa00000000000001","name":"cache","namespace":"local","start_time":1700001000.3,
 "end_time":1700001000.45,"annotations":{"hit":false,"region_code":"eu"}}"#,
    ],
    // 11: a quiet batch job.
    &[
        r#"{"name":"batch","id":"ab00000000000001","trace_id":"1-6500000b-00000000000000000000000b",
 "start_time":1700001100.0,"end_time":1700001100.01}"#,
    ],
];

/// The summary of each fixture trace (index 0 is trace 1).
pub(crate) fn summaries() -> Vec<TraceSummary> {
    TRACES
        .iter()
        .map(|docs| {
            let parsed: Vec<Document> = docs
                .iter()
                .map(|raw| Document::parse(*raw).expect("fixture document is valid"))
                .collect();
            let segs: Vec<_> = parsed.iter().map(|d| d.segment()).collect();
            derive(parsed[0].trace_id(), &segs)
                .expect("non-empty trace")
                .summary
        })
        .collect()
}
