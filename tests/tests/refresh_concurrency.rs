//! N concurrent refreshes of one token over real HTTP, released together, many rounds (issue 3).
//!
//! The IdP clock is frozen, so every request of a round lands on the same millisecond: with a grace period
//! every request succeeds and all return one successor; at leeway 0 exactly one wins and the family dies.
//! After each test: no family has two live generations.

use std::sync::Arc;

use mock_idp::config::RefreshTokenConfig;
use mock_idp::core::model::RotationType;
use reqwest::StatusCode;
use rstest::rstest;
use serde_json::Value;
use tests::*;
use tokio::sync::Barrier;

const SCOPES: &str = "openid profile email offline_access";

fn tenant_with_leeway(leeway: u8) -> mock_idp::TenantConfig {
    let mut cfg = mock_idp::TenantConfig::default_tenant();
    cfg.apps[0].settings.oauth_client.refresh_token = Some(RefreshTokenConfig { rotation_type: RotationType::Rotate, leeway });
    cfg
}

/// Sends `n` refreshes of `rt`, released together by a barrier; returns (status, body) in task order.
async fn burst(c: &Client, rt: &str, n: usize) -> Vec<(StatusCode, Value)> {
    let barrier = Arc::new(Barrier::new(n));
    let mut tasks = Vec::with_capacity(n);
    for _ in 0..n {
        let (c, rt, barrier) = (c.clone(), rt.to_string(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            c.refresh(Server::DEFAULT, CLIENT_ID, Some(CLIENT_SECRET), &rt, None).await
        }));
    }
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        out.push(t.await.expect("refresh task"));
    }
    out
}

#[rstest]
#[case::two(2, 100)]
#[case::eight(8, 200)]
#[case::sixty_four(64, 12)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_a_grace_period_every_racer_succeeds_with_one_successor(#[case] n: usize, #[case] rounds: usize) {
    let idp = idp_with(tenant_with_leeway(15)).await;
    let c = Client::new(&idp);
    let mut rt = c.login(Server::DEFAULT, ALICE, PASSWORD, SCOPES).await.refresh_token.expect("refresh token");
    for round in 0..rounds {
        let results = burst(&c, &rt, n).await;
        let mut successors = Vec::new();
        for (s, b) in &results {
            assert_eq!(*s, StatusCode::OK, "round {round}: {b}");
            successors.push(b["refresh_token"].as_str().expect("refresh_token").to_string());
        }
        successors.dedup();
        assert_eq!(successors.len(), 1, "round {round}: every racer gets the same successor");
        assert_ne!(successors[0], rt);
        rt = successors.pop().expect("one successor");
        idp.check_invariants().unwrap_or_else(|e| panic!("round {round}: {e}"));
        // The next round starts one second later, still inside the new predecessor's window.
        idp.clock().advance_ms(1_000);
    }
    let (s, b) = c.refresh(Server::DEFAULT, CLIENT_ID, Some(CLIENT_SECRET), &rt, None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert!(c.logs("eventType eq \"app.oauth2.as.token.detect_reuse\"").await.is_empty());
    // Exactly one rotation per round (plus the final one): the generation counter says so.
    let last = c
        .logs_raw(&[("filter", "eventType eq \"app.oauth2.as.token.grant.refresh_token\""), ("sortOrder", "DESCENDING"), ("limit", "1")])
        .await
        .json();
    assert_eq!(last[0]["debugContext"]["debugData"]["refreshGeneration"], rounds as u64 + 1);
    idp.check_invariants().unwrap();
}

#[rstest]
#[case::two(2, 60)]
#[case::eight(8, 200)]
#[case::sixty_four(64, 10)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn at_leeway_zero_exactly_one_racer_wins_and_the_family_dies(#[case] n: usize, #[case] rounds: usize) {
    let idp = idp_with(tenant_with_leeway(0)).await;
    let c = Client::new(&idp);
    for round in 0..rounds {
        let t = c.login(Server::DEFAULT, ALICE, PASSWORD, SCOPES).await;
        let rt = t.refresh_token.expect("refresh token");
        let results = burst(&c, &rt, n).await;
        let winners: Vec<&Value> = results.iter().filter(|(s, _)| *s == StatusCode::OK).map(|(_, b)| b).collect();
        assert_eq!(winners.len(), 1, "round {round}: exactly one winner, got {}", winners.len());
        for (s, b) in results.iter().filter(|(s, _)| *s != StatusCode::OK) {
            assert_eq!(*s, StatusCode::BAD_REQUEST);
            assert_eq!(b["error"], "invalid_grant");
            assert_eq!(b["error_description"], "The refresh token is invalid or expired.");
        }
        // The winner's successor died with the family.
        let successor = winners[0]["refresh_token"].as_str().expect("winner's refresh token");
        let (s, b) = c.refresh(Server::DEFAULT, CLIENT_ID, Some(CLIENT_SECRET), successor, None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "round {round}: {b}");
        assert!(!c.is_active(Server::DEFAULT, winners[0]["access_token"].as_str().unwrap()).await);
        idp.check_invariants().unwrap_or_else(|e| panic!("round {round}: {e}"));
    }
    // One detect_reuse per losing request (each replays the dead predecessor; only the first finds the
    // family alive, the others find it revoked): at least one per round, and the System Log shows them.
    let reuse = c.logs("eventType eq \"app.oauth2.as.token.detect_reuse\"").await;
    assert_eq!(reuse.len(), rounds, "one detect_reuse per round: the first loser triggers it, the rest find the family revoked");
    idp.check_invariants().unwrap();
}
