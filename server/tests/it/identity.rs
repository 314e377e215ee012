//! Guest identities over the wire: a token from one visit proves the same profile on
//! the next, whatever the nickname; a tampered one buys a fresh identity, not someone
//! else's.

use client::native::Hello;

use crate::support::*;

#[tokio::test]
async fn a_kept_token_brings_back_the_same_profile_under_any_nickname() {
    let server = start_server(|_| {}).await;
    let first = join(&server, "ann").await;
    let (profile, token) = (first.welcome.profile, first.welcome.token.clone());
    drop(first);

    let renamed = Client::connect(&server, Hello::new("annie").with_token(&token))
        .await
        .expect("join");
    assert_eq!(
        renamed.welcome.profile, profile,
        "stats follow the identity"
    );
    assert_eq!(renamed.welcome.token, token);

    let namesake = join(&server, "ann").await;
    assert_ne!(
        namesake.welcome.profile, profile,
        "the same nickname without the token is someone else"
    );
}

#[tokio::test]
async fn a_tampered_token_gets_a_fresh_identity() {
    let server = start_server(|_| {}).await;
    let honest = join(&server, "ann").await;
    let victim = honest.welcome.profile;
    let (_, tag) = honest
        .welcome
        .token
        .rsplit_once('.')
        .expect("a signed token");
    let forged = format!("v1.{}.{tag}", shared::ProfileId(victim.0 ^ 0xff).to_hex());
    let forger = Client::connect(&server, Hello::new("eve").with_token(forged))
        .await
        .expect("join");
    assert_ne!(forger.welcome.profile, victim);
    assert_ne!(forger.welcome.profile, shared::ProfileId(victim.0 ^ 0xff));
}
