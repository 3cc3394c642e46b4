use super::*;
use crate::config::ExtensionConfig;
use axum::http::HeaderMap;

fn user(id: &str, name: &str) -> HaUser {
    HaUser { id: id.into(), username: None, name: name.into() }
}

fn headers(pairs: &[(&'static str, &[u8])]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(*k, axum::http::HeaderValue::from_bytes(v).unwrap());
    }
    h
}

fn set(items: &[&str]) -> HashSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn plan_numbers_from_start_skipping_taken() {
    let users = [user("a", "Alice"), user("b", "Bob"), user("c", "Carol")];
    let p = plan(&HashMap::new(), &users, &set(&["101", "9"]), &Reserved::default(), 100).unwrap();
    let got: Vec<(&str, &str)> = p.add.iter().map(|(u, e)| (u.id.as_str(), e.as_str())).collect();
    assert_eq!(got, [("a", "100"), ("b", "102"), ("c", "103")]);
    assert!(p.remove.is_empty() && p.rename.is_empty());
}

#[test]
fn plan_keeps_existing_removes_gone_renames_changed() {
    let mut current = HashMap::new();
    current.insert("a".to_string(), ("100".to_string(), "Alice".to_string()));
    current.insert("b".to_string(), ("101".to_string(), "Bob".to_string()));
    let users = [user("a", "Alice Smith"), user("c", "Carol")];
    let p = plan(&current, &users, &set(&["100", "101"]), &Reserved::default(), 100).unwrap();
    // Bob's number is still taken while the plan is made: Carol gets 102.
    assert_eq!(p.add, vec![(user("c", "Carol"), "102".to_string())]);
    assert_eq!(p.remove, vec![("b".to_string(), "101".to_string())]);
    assert_eq!(p.rename, vec![("100".to_string(), "Alice Smith".to_string())]);
}

#[test]
fn plan_ignores_duplicate_users() {
    let p = plan(&HashMap::new(), &[user("a", "A"), user("a", "A")], &HashSet::new(), &Reserved::default(), 200).unwrap();
    assert_eq!(p.add.len(), 1);
    assert_eq!(p.add[0].1, "200");
}

#[test]
fn passwords_are_long_random_alphanumerics() {
    let a = generate_password();
    let b = generate_password();
    assert_eq!(a.len(), PASSWORD_LEN);
    assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
    assert_ne!(a, b);
}

#[tokio::test]
async fn sync_allocates_persists_and_removes() {
    let store = Store::open_in_memory().await.unwrap();
    // 101 belongs to the options (config source)
    store
        .sync_config_extensions(&[ExtensionConfig { extension: "101".into(), password: "door-secret".into(), name: Some("Door".into()), dtmf: Default::default(), forward: Default::default(), dnd: false, kind: Default::default(), door_open: None }], "ha-pbx")
        .await
        .unwrap();

    let first = sync(&store, &[user("u1", "Alice"), user("u2", "Bob")], 100, &Reserved::default()).await.unwrap();
    let nums: Vec<&str> = first.iter().map(|e| e.extension.as_str()).collect();
    assert_eq!(nums, ["100", "102"]);
    assert!(first.iter().all(|e| e.password.len() == PASSWORD_LEN));

    // the rows are real extensions, owned by ha_user, with the user's name
    let rows = store.extensions().await.unwrap();
    let alice = rows.iter().find(|r| r.extension == "100").unwrap();
    assert_eq!((alice.source.as_str(), alice.name.as_deref()), (SOURCE_HA_USER, Some("Alice")));
    assert_eq!(alice.password, first[0].password);

    // same users again: nothing changes, passwords are kept
    let again = sync(&store, &[user("u2", "Bob"), user("u1", "Alice")], 100, &Reserved::default()).await.unwrap();
    assert_eq!(again, first);

    // Alice leaves while Carol arrives: a number freed in this sync is not
    // handed out in the same sync, so Carol gets 103 ...
    let after = sync(&store, &[user("u2", "Bob"), user("u3", "Carol")], 100, &Reserved::default()).await.unwrap();
    let got: Vec<(&str, &str)> = after.iter().map(|e| (e.user_id.as_str(), e.extension.as_str())).collect();
    assert_eq!(got, [("u2", "102"), ("u3", "103")]);
    // ... and the next new user gets the lowest free one, 100, with a new password
    let after = sync(&store, &[user("u2", "Bob"), user("u3", "Carol"), user("u4", "Dan")], 100, &Reserved::default()).await.unwrap();
    let got: Vec<(&str, &str)> = after.iter().map(|e| (e.user_id.as_str(), e.extension.as_str())).collect();
    assert_eq!(got, [("u4", "100"), ("u2", "102"), ("u3", "103")]);
    assert_ne!(after[0].password, first[0].password, "a new user never inherits a password");

    // the options' extension was never touched
    let rows = store.extensions().await.unwrap();
    let door = rows.iter().find(|r| r.extension == "101").unwrap();
    assert_eq!((door.source.as_str(), door.password.as_str()), ("config", ""), "config rows keep HA1, not the password");
    assert!(door.ha1("ha-pbx").is_some());

    // config sync (every start) leaves ha_user rows alone
    store.sync_config_extensions(&[], "ha-pbx").await.unwrap();
    assert_eq!(list(&store).await.unwrap(), after);
}

#[tokio::test]
async fn sync_persists_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let first = sync(&store, &[user("u1", "Alice")], 300, &Reserved::default()).await.unwrap();
    drop(store);
    let store = Store::open(dir.path()).await.unwrap();
    assert_eq!(list(&store).await.unwrap(), first);
    assert_eq!(first[0].extension, "300");
}

#[test]
fn users_from_ingress_headers() {
    assert_eq!(HaUser::from_headers(&HeaderMap::new()).unwrap(), None);
    let full = headers(&[(HEADER_USER_ID, b"8a7c"), (HEADER_USER_NAME, b"alice"), (HEADER_DISPLAY_NAME, "Alice Müller".as_bytes())]);
    assert_eq!(
        HaUser::from_headers(&full).unwrap(),
        Some(HaUser { id: "8a7c".into(), username: Some("alice".into()), name: "Alice Müller".into() })
    );
    // the display name falls back to the login name, then the id
    let login_only = headers(&[(HEADER_USER_ID, b"8a7c"), (HEADER_USER_NAME, b"alice")]);
    assert_eq!(HaUser::from_headers(&login_only).unwrap().unwrap().name, "alice");
    let id_only = headers(&[(HEADER_USER_ID, b" 8a7c "), (HEADER_DISPLAY_NAME, b"")]);
    assert_eq!(HaUser::from_headers(&id_only).unwrap().unwrap().name, "8a7c");
    assert_eq!(HaUser::from_headers(&headers(&[(HEADER_USER_ID, b"  ")])).unwrap(), None);

    let bad = headers(&[(HEADER_USER_ID, b"8a7c"), (HEADER_DISPLAY_NAME, b"\xff\xfe")]);
    let e = HaUser::from_headers(&bad).unwrap_err().to_string();
    assert_eq!(e, "x-remote-user-display-name: not UTF-8 text");
    let long = "x".repeat(300);
    let e = HaUser::from_headers(&headers(&[(HEADER_USER_ID, long.as_bytes())])).unwrap_err().to_string();
    assert!(e.starts_with("x-remote-user-id: longer than"), "{e}");
}

#[tokio::test]
async fn ensure_creates_once_keeps_the_password_and_follows_renames() {
    let store = Store::open_in_memory().await.unwrap();
    store
        .sync_config_extensions(&[ExtensionConfig { extension: "101".into(), password: "door-secret".into(), name: Some("Door".into()), dtmf: Default::default(), forward: Default::default(), dnd: false, kind: Default::default(), door_open: None }], "ha-pbx")
        .await
        .unwrap();
    let alice = HaUser { id: "u1".into(), username: Some("alice".into()), name: "Alice".into() };
    let (a, change) = ensure(&store, &alice, 100, &Reserved::default()).await.unwrap();
    assert_eq!((a.extension.as_str(), change), ("100", Change::Created));
    assert_eq!(a.password.len(), PASSWORD_LEN);
    assert_eq!(a.username.as_deref(), Some("alice"));

    let (again, change) = ensure(&store, &alice, 100, &Reserved::default()).await.unwrap();
    assert_eq!((again.clone(), change), (a.clone(), Change::Unchanged));

    // 101 is the options' extension: Bob gets 102
    let bob = HaUser { id: "u2".into(), username: None, name: "Bob".into() };
    let (b, _) = ensure(&store, &bob, 100, &Reserved::default()).await.unwrap();
    assert_eq!(b.extension, "102");

    let renamed = HaUser { name: "Alice Smith".into(), ..alice };
    let (r, change) = ensure(&store, &renamed, 100, &Reserved::default()).await.unwrap();
    assert_eq!(change, Change::Renamed);
    assert_eq!((r.extension.as_str(), r.password.as_str(), r.name.as_str()), ("100", a.password.as_str(), "Alice Smith"));
    let row = store.extensions().await.unwrap().into_iter().find(|e| e.extension == "100").unwrap();
    assert_eq!((row.name.as_deref(), row.source.as_str()), (Some("Alice Smith"), SOURCE_HA_USER));

    let all: Vec<String> = list(&store).await.unwrap().into_iter().map(|e| e.extension).collect();
    assert_eq!(all, ["100", "102"]);
}

#[tokio::test]
async fn concurrent_first_visits_get_distinct_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { ensure(&store, &user(&format!("u{i}"), &format!("User {i}")), 100, &Reserved::default()).await.unwrap().0.extension })
        })
        .collect();
    let mut got = Vec::new();
    for t in tasks {
        got.push(t.await.unwrap());
    }
    got.sort();
    assert_eq!(got, (100..108).map(|n| n.to_string()).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_known_user_is_answered_without_the_write_lock() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let alice = HaUser { id: "u1".into(), username: Some("alice".into()), name: "Alice".into() };
    let (a, _) = ensure(&store, &alice, 100, &Reserved::default()).await.unwrap();
    // another writer holds the database's write lock (for longer than the answer may take)
    let writer = store.pool().begin_with("BEGIN IMMEDIATE").await.unwrap();
    let quick = std::time::Duration::from_secs(2);
    let (again, change) = tokio::time::timeout(quick, ensure(&store, &alice, 100, &Reserved::default())).await.expect("waited for the write lock").unwrap();
    assert_eq!((again, change), (a.clone(), Change::Unchanged));
    let from_person = HaUser { id: "u1".into(), username: None, name: "Alice (person)".into() };
    let (b, change) = tokio::time::timeout(quick, ensure_exists(&store, &from_person, 100, &Reserved::default())).await.expect("waited for the write lock").unwrap();
    assert_eq!((b, change), (a.clone(), Change::Unchanged));
    // a change still writes, once the lock is free
    writer.commit().await.unwrap();
    let renamed = HaUser { name: "Alice Smith".into(), ..alice };
    let (r, change) = ensure(&store, &renamed, 100, &Reserved::default()).await.unwrap();
    assert_eq!((r.name.as_str(), r.password.as_str(), change), ("Alice Smith", a.password.as_str(), Change::Renamed));
}

#[test]
fn users_from_the_persons_template() {
    let text = r#"[{"id": "c0ffee", "name": "Test Admin"}, {"id": "", "name": "x"}, {"name": "no id"}, {"id": "b0b", "name": ""}]"#;
    let users = users_from_persons(text).unwrap();
    assert_eq!(
        users,
        vec![HaUser { id: "c0ffee".into(), username: None, name: "Test Admin".into() }, HaUser { id: "b0b".into(), username: None, name: "b0b".into() }]
    );
    assert_eq!(users_from_persons(" []\n").unwrap(), vec![]);
    let e = users_from_persons("Error rendering").unwrap_err().to_string();
    assert!(e.contains("not a JSON list"), "{e}");
}

#[tokio::test]
async fn ensure_exists_never_renames() {
    let store = Store::open_in_memory().await.unwrap();
    let from_headers = HaUser { id: "u1".into(), username: Some("alice".into()), name: "Alice".into() };
    let (a, _) = ensure(&store, &from_headers, 100, &Reserved::default()).await.unwrap();
    let from_person = HaUser { id: "u1".into(), username: None, name: "Alice (person)".into() };
    let (b, change) = ensure_exists(&store, &from_person, 100, &Reserved::default()).await.unwrap();
    assert_eq!((b, change), (a, Change::Unchanged));
    let (c, change) = ensure_exists(&store, &user("u2", "Bob"), 100, &Reserved::default()).await.unwrap();
    assert_eq!((c.extension.as_str(), change), ("101", Change::Created));
}

#[tokio::test]
async fn the_agents_number_is_never_given_to_a_user() {
    let store = Store::open_in_memory().await.unwrap();
    let alice = HaUser { id: "u1".into(), username: None, name: "Alice".into() };
    let (a, _) = ensure(&store, &alice, 200, &Reserved::numbers(["200"])).await.unwrap();
    assert_eq!(a.extension, "201");
    let all = sync(&store, &[alice, user("u2", "Bob")], 200, &Reserved::numbers(["200"])).await.unwrap();
    assert_eq!(all.iter().map(|e| e.extension.as_str()).collect::<Vec<_>>(), ["201", "202"]);
}

#[test]
fn group_numbers_and_feature_codes_are_never_given_to_a_user() {
    let yaml = "extensions: []\ngroups:\n  - {extension: \"100\", name: House, members: [\"101\"]}\nfeature_codes: {pickup: \"102\", intercom: \"104\"}\n";
    let config: crate::config::Config = serde_norway::from_str(yaml).unwrap();
    let reserved = Reserved::from_config(&config);
    assert!(reserved.why("100").unwrap().contains("ring group"));
    assert!(reserved.holds("102"), "a numeric pickup code");
    assert!(reserved.holds("1041"), "a number under the intercom prefix");
    let users = [user("a", "Alice"), user("b", "Bob"), user("c", "Carol")];
    let p = plan(&HashMap::new(), &users, &HashSet::new(), &reserved, 100).unwrap();
    let got: Vec<&str> = p.add.iter().map(|(_, e)| e.as_str()).collect();
    assert_eq!(got, ["101", "103", "105"]);
}
