//! Format, validation and decisions of the app config, without a relay.

use super::*;

fn map(entries: &[(&str, Value)]) -> Value {
    Value::Map(
        entries
            .iter()
            .map(|(k, v)| ((*k).to_string(), v.clone()))
            .collect(),
    )
}

fn s(text: &str) -> Value {
    Value::String(text.into())
}

fn entry_error(json: &str) -> (String, usize, String, String) {
    match AppConfig::parse(json, "t.json") {
        Err(AppConfigError::Entry {
            section,
            index,
            field,
            reason,
            ..
        }) => (section.to_string(), index, field, reason),
        other => panic!("expected an entry error, got {other:?}"),
    }
}

#[test]
fn the_example_and_an_empty_object_load() {
    let text = include_str!("../../../deploy/app-config.example.json");
    let c = AppConfig::parse(text, "example").expect("the example is valid");
    assert_eq!(c.write_rules.len(), 8);
    assert!(c.filters_views());
    let empty = AppConfig::parse("{}", "empty").expect("{} is valid");
    assert!(empty.write_rules.is_empty() && !empty.filters_views());
}

#[test]
fn errors_name_the_rule_and_the_field() {
    let (section, index, field, reason) = entry_error(
        r#"{"write_rules":[{"path":"/a"},{"path":"/b/{x}","checks":[{"type":"state_not_null","lookup":"/c/{y}"}]}]}"#,
    );
    assert_eq!((section.as_str(), index), ("write_rules", 1));
    assert_eq!(field, "checks[0].lookup");
    assert!(reason.contains("{y}"), "{reason}");
    let (_, _, field, _) =
        entry_error(r#"{"write_rules":[{"path":"/a","checks":[{"type":"nope"}]}]}"#);
    assert_eq!(field, "checks[0].type");
    let (_, _, field, _) = entry_error(r#"{"write_rules":[{"path":"/a","typo":1}]}"#);
    assert_eq!(field, "typo");
    let (_, _, field, _) = entry_error(r#"{"write_rules":[{"checks":[]}]}"#);
    assert_eq!(field, "path");
    let (_, _, field, _) = entry_error(r#"{"write_rules":[{"path":"/a","type":"numbr"}]}"#);
    assert_eq!(field, "type");
    let (section, _, field, _) =
        entry_error(r#"{"snapshot_visibility":[{"path":"/u/{id}/**","visible":"owner"}]}"#);
    assert_eq!(
        (section.as_str(), field.as_str()),
        ("snapshot_visibility", "owner_segment")
    );
    let (section, _, field, _) = entry_error(r#"{"params":[{"path":"/a","strategy":"biggest"}]}"#);
    assert_eq!((section.as_str(), field.as_str()), ("params", "strategy"));
    let text = AppConfig::parse(
        r#"{"write_rules":[{"path":"/x/{a}","mode":"some"}]}"#,
        "f.json",
    )
    .expect_err("bad mode")
    .to_string();
    assert!(
        text.contains("f.json")
            && text.contains("write_rules[0] (/x/{a})")
            && text.contains("mode"),
        "{text}"
    );
    assert!(matches!(
        AppConfig::parse(r#"{"scopes":["emit:/a/**"]}"#, "f"),
        Err(AppConfigError::Setting { .. })
    ));
    assert!(matches!(
        AppConfig::parse("{not json", "f"),
        Err(AppConfigError::Syntax { .. })
    ));
}

#[test]
fn the_check_key_is_accepted_as_well_as_type() {
    let c = AppConfig::parse(
        r#"{"write_rules":[{"path":"/a/{u}","checks":[{"check":"segment_equals_session","segment":"u"}]}]}"#,
        "f",
    )
    .expect("check key");
    let state = State::new();
    assert!(c
        .check_write("/a/alice", &Value::Int(1), Some("alice"), &state)
        .is_ok());
    let v = c
        .check_write("/a/bob", &Value::Int(1), Some("alice"), &state)
        .expect_err("refused");
    assert_eq!(v.rule, 0);
}

#[test]
fn chat_messages_need_sender_content_and_room() {
    let c = AppConfig::parse(
        include_str!("../../../deploy/app-config.example.json"),
        "ex",
    )
    .expect("valid");
    let at = "/chat/room/r1/messages";
    assert_eq!(
        c.write_lookups(at, &Value::Null, Some("alice")),
        vec!["/chat/room/r1/meta".to_string()]
    );
    let mut state = State::new();
    let good = map(&[("fromId", s("alice")), ("content", s("hi"))]);
    let refused = c
        .check_write(at, &good, Some("alice"), &state)
        .expect_err("no meta");
    assert!(refused.message.contains("/chat/room/r1/meta"), "{refused}");
    state.insert(
        "/chat/room/r1/meta".into(),
        map(&[("creatorId", s("alice"))]),
    );
    assert!(c.check_write(at, &good, Some("alice"), &state).is_ok());
    assert!(c.check_write(at, &good, Some("bob"), &state).is_err());
    let no_content = map(&[("fromId", s("alice"))]);
    assert!(c
        .check_write(at, &no_content, Some("alice"), &state)
        .is_err());
    // Open mode: no subject, no identity checks.
    assert!(c.check_write(at, &no_content, None, &State::new()).is_ok());
}

#[test]
fn any_mode_pre_checks_and_null_writes() {
    let c = AppConfig::parse(
        include_str!("../../../deploy/app-config.example.json"),
        "ex",
    )
    .expect("valid");
    let mut state = State::new();
    state.insert(
        "/chat/room/r/meta".into(),
        map(&[("creatorId", s("alice"))]),
    );
    // bans: creator or admin.
    assert!(c
        .check_write(
            "/chat/room/r/bans/x",
            &Value::Bool(true),
            Some("alice"),
            &state
        )
        .is_ok());
    assert!(c
        .check_write(
            "/chat/room/r/bans/x",
            &Value::Bool(true),
            Some("bob"),
            &state
        )
        .is_err());
    state.insert("/chat/room/r/admin/bob".into(), Value::Bool(true));
    assert!(c
        .check_write(
            "/chat/room/r/bans/x",
            &Value::Bool(true),
            Some("bob"),
            &state
        )
        .is_ok());
    // requests: the pre-check runs even for null writes; the checks do not.
    assert!(c
        .check_write(
            "/chat/requests/bob/alice",
            &Value::Null,
            Some("alice"),
            &state
        )
        .is_ok());
    assert!(c
        .check_write(
            "/chat/requests/bob/carol",
            &Value::Null,
            Some("alice"),
            &state
        )
        .is_err());
    let bad = c
        .check_write("/chat/requests/bob", &Value::Null, Some("alice"), &state)
        .expect_err("malformed path");
    assert!(bad.message.starts_with("A friend request"), "{bad}");
    // dms: either friendship direction.
    let dm = map(&[("fromId", s("alice"))]);
    assert!(c
        .check_write("/chat/user/bob/dms/d", &dm, Some("alice"), &state)
        .is_err());
    state.insert("/chat/user/bob/friends/alice".into(), Value::Bool(true));
    assert!(c
        .check_write("/chat/user/bob/dms/d", &dm, Some("alice"), &state)
        .is_ok());
}

#[test]
fn value_type_and_range() {
    let c = AppConfig::parse(
        r#"{"write_rules":[
            {"path":"/v","type":"number","min":0,"max":1},
            {"path":"/name","type":"string","max":3},
            {"path":"/i","type":"int","message":"integers only"}]}"#,
        "f",
    )
    .expect("valid");
    let st = State::new();
    assert!(c.check_write("/v", &Value::Float(0.5), None, &st).is_ok());
    assert!(c.check_write("/v", &Value::Int(1), None, &st).is_ok());
    let e = c
        .check_write("/v", &Value::Float(1.5), None, &st)
        .expect_err("above");
    assert!(e.message.contains("maximum"), "{e}");
    assert!(c.check_write("/v", &s("x"), None, &st).is_err());
    assert!(c.check_write("/name", &s("abc"), None, &st).is_ok());
    assert!(c.check_write("/name", &s("abcd"), None, &st).is_err());
    let e = c
        .check_write("/i", &Value::Float(1.5), None, &st)
        .expect_err("int");
    assert_eq!(e.message, "integers only");
}

#[test]
fn visibility_and_redaction() {
    let c = AppConfig::parse(
        include_str!("../../../deploy/app-config.example.json"),
        "ex",
    )
    .expect("valid");
    let d = |a: &str, who: Option<&str>| view::decide(&c.visibility, a, who);
    assert_eq!(d("/chat/user/alice/private", Some("alice")), Decision::Show);
    assert_eq!(d("/chat/user/alice/private", Some("bob")), Decision::Hide);
    assert_eq!(d("/chat/user/alice/profile", Some("bob")), Decision::Show);
    assert_eq!(
        d("/chat/user/alice/profile/pic", Some("bob")),
        Decision::Show
    );
    assert_eq!(d("/x/__auth", Some("bob")), Decision::Hide);
    assert_eq!(d("/chat/room/r/meta", None), Decision::Show);
    assert_eq!(
        d("/chat/room/r/messages", Some("bob")),
        Decision::IfPresent("/chat/room/r/presence/bob".into())
    );
    assert_eq!(d("/chat/room/r/messages", None), Decision::Hide);
    assert_eq!(d("/other", Some("bob")), Decision::Show);
    let mut v = map(&[
        ("name", s("r")),
        ("passwordHash", s("h")),
        ("passwordSalt", s("s")),
    ]);
    assert!(view::redacts(&c.transforms, "/chat/room/r/meta"));
    view::redact(&c.transforms, "/chat/room/r/meta", &mut v);
    assert_eq!(v, map(&[("name", s("r"))]));
    assert!(!view::redacts(&c.transforms, "/chat/room/r/messages"));
}

#[test]
fn params_feed_strategies_ttl_and_auth() {
    let c = AppConfig::parse(
        r#"{"scopes":["write:/app/user/{userId}/**"],
            "rate_limits":{"login_max_attempts":2},
            "params":[{"path":"/score/{u}","strategy":"max"},{"path":"/t/**","ttl_secs":5}]}"#,
        "f",
    )
    .expect("valid");
    let mut relay = RelayConfig {
        auth: Some(crate::config::AuthConfig::default()),
        ..RelayConfig::default()
    };
    assert!(c.apply_to(&mut relay).is_empty());
    assert_eq!(relay.strategy_for("/score/alice"), ConflictStrategy::Max);
    assert_eq!(relay.strategy_for("/other"), ConflictStrategy::Lww);
    let auth = relay.auth.expect("auth");
    assert_eq!(
        auth.user_scopes,
        vec!["write:/app/user/{userId}/**".to_string()]
    );
    assert_eq!(auth.login_max_attempts, 2);
    assert_eq!(auth.register_max_attempts, 10);
    assert_eq!(c.ttl_for("/t/a/b"), Some(Ttl::Sliding(5)));
    assert_eq!(c.ttl_for("/score/a"), None);
}

#[test]
fn discovery_loads_only_a_single_file() {
    let base = std::env::temp_dir().join(format!("clasp-appcfg-disc-{}", std::process::id()));
    let (one, two, none) = (base.join("one"), base.join("two"), base.join("none"));
    for d in [&one, &two, &none] {
        std::fs::create_dir_all(d).expect("dir");
    }
    std::fs::write(one.join("a.json"), "{}").expect("write");
    std::fs::write(two.join("a.json"), "{}").expect("write");
    std::fs::write(two.join("b.json"), "{}").expect("write");
    std::fs::write(none.join("notes.txt"), "x").expect("write");
    assert_eq!(discover_in(&[&none, &one]), Some(one.join("a.json")));
    assert_eq!(discover_in(&[&two, &one]), None);
    assert_eq!(discover_in(&[&base.join("missing")]), None);
    let _ = std::fs::remove_dir_all(&base);
}
