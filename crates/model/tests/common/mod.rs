//! Segment documents of the reference's test vector T1 (shared/reference §8.2), shared
//! by the model's test files.

#![allow(dead_code, unreachable_pub)]

/// T1 document.
pub const S1: &str = r#"{"name":"web","id":"70de5b6f19ff9a0a","trace_id":"1-5759e988-bd862e3fe1be46a994272793",
 "start_time":1465510280.0,"end_time":1465510281.25,"origin":"AWS::EC2::Instance","user":"alice",
 "http":{"request":{"method":"GET","url":"https://web.example.com/api/game/42","client_ip":"10.0.0.1",
 "user_agent":"curl/8"},"response":{"status":200,"content_length":12}},
 "annotations":{"gameid":"817DL6VO","age":31,"vip":true},
 "subsegments":[{"id":"53995c3f42cd8ad8","name":"DynamoDB","namespace":"aws","start_time":1465510280.1,
   "end_time":1465510280.4,"throttle":true,"error":true,"aws":{"operation":"GetItem","table_name":"games"},
   "http":{"response":{"status":429}}},
  {"id":"6b1b6b3f42cd8a01","name":"api.backend.example.com","namespace":"remote",
   "start_time":1465510280.5,"end_time":1465510281.1,"http":{"request":{"method":"POST",
   "url":"https://api.backend.example.com/v2/x"},"response":{"status":200}}}]}"#;
/// T1 document.
pub const S2: &str = r#"{"name":"api.backend.example.com","id":"a1b2c3d4e5f60718","trace_id":"1-5759e988-bd862e3fe1be46a994272793",
 "parent_id":"6b1b6b3f42cd8a01","start_time":1465510280.55,"end_time":1465510281.05,
 "http":{"request":{"method":"POST","url":"https://api.backend.example.com/v2/x"},"response":{"status":200}}}"#;
/// T1 document.
pub const S3: &str = r#"{"type":"subsegment","id":"0f0e0d0c0b0a0908","trace_id":"1-5759e988-bd862e3fe1be46a994272793",
 "parent_id":"70de5b6f19ff9a0a","name":"render","start_time":1465510281.1,"end_time":1465510281.2,
 "fault":true,"cause":{"working_directory":"/app","exceptions":[{"id":"1234567890abcdef",
 "type":"ValueError","message":"bad template","stack":[{"path":"app.py","line":10,"label":"render"}]}]}}"#;
