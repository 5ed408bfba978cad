//! Durability of group commit: `serve` killed with SIGKILL in the middle of a burst of
//! concurrent writes loses no call it answered, and leaves a ledger that verifies.

use crate::approvals::serve_with;
use crate::support::Sandbox;
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One MCP `tools/call` over HTTP/1.1 (2026-07-28, stateless); the response text, or `None`
/// when the connection failed or broke (the server is gone).
fn tools_call(addr: &str, key: &str, tool: &str, arguments: Value) -> Option<String> {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": tool, "arguments": arguments, "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "crash-test", "version": "1"}}}})
    .to_string();
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let req = format!(
        "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n\
         Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n\
         Authorization: Bearer {key}\r\nMCP-Protocol-Version: 2026-07-28\r\n\
         Mcp-Method: tools/call\r\nMcp-Name: {tool}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    text.starts_with("HTTP/1.1 200").then_some(text)
}

#[test]
fn a_sigkill_during_a_burst_of_group_committed_writes_loses_no_answered_call() {
    let sb = Sandbox::new();
    let t = sb.create_tenant("acme");
    let (mut server, addr) = serve_with(&sb, &[("TENANTOPS_MCP_RATE_LIMIT", "1000000")]);
    let answered = Arc::new(Mutex::new(Vec::<String>::new()));
    let next = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for _ in 0..16 {
        let (addr, key) = (addr.clone(), t.api_key.clone());
        let (answered, next, stop) = (answered.clone(), next.clone(), stop.clone());
        clients.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let handle = format!("svc-{}", next.fetch_add(1, Ordering::Relaxed));
                let input = json!({"handle": handle, "kind": "service", "roles": ["developer"]});
                let Some(text) = tools_call(&addr, &key, "members.create_persona", input) else {
                    return;
                };
                // An answer with the result of the call: the persona was created, durably.
                if text.contains("\"result\"") && !text.contains("\"isError\":true") {
                    answered.lock().unwrap().push(handle);
                } else {
                    panic!("a call failed before the kill: {text}");
                }
            }
        }));
    }
    // Kill once the burst is well under way, in the middle of it.
    let started = Instant::now();
    while answered.lock().unwrap().len() < 300 && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(5));
    }
    server.kill().expect("SIGKILL the server");
    let _ = server.wait();
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().expect("a client thread panicked");
    }
    let answered = answered.lock().unwrap().clone();
    assert!(
        answered.len() >= 300,
        "only {} calls answered",
        answered.len()
    );

    // The ledger verifies (chain, tree, signatures), and holds an entry for every answer
    // (besides the tenant's creation).
    let verified = sb.run(&["audit", "verify", "--tenant", &t.tenant_id]);
    verified.code(0);
    let report = &verified.json()["report"];
    assert!(
        report["entries"].as_u64().unwrap() > answered.len() as u64,
        "{report} for {} answered creates",
        answered.len()
    );
    // Every answered call's persona is there.
    let listed = sb.call_ok(&t.api_key, "members.list_personas", json!({}));
    let handles: std::collections::HashSet<&str> = listed["personas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["handle"].as_str().unwrap())
        .collect();
    let missing: Vec<&String> = answered
        .iter()
        .filter(|h| !handles.contains(h.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} answered calls were lost: {missing:?}",
        missing.len(),
        answered.len()
    );
}
