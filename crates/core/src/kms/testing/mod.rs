//! Test support for KMS clients; not for production use.
//!
//! - [`Moto`] runs a real `moto_server` (AWS KMS emulator, PyPI `moto[server]`, installed by
//!   `.ci/test-deps`) on a free 127.0.0.1 port. It is always compiled (it needs nothing but
//!   std and tokio) so that the integration tests of this crate and the end-to-end tests of the
//!   binary can use it.
//! - `GcpFake` and `AzureFake` are in-process axum servers speaking the Cloud KMS and Key
//!   Vault REST shapes (token endpoints included). They need axum, so outside this crate's own
//!   unit tests they sit behind the cargo feature `kms-fakes`: other crates enable it in their
//!   `[dev-dependencies]` (`tenantops-core = { workspace = true, features = ["kms-fakes"] }`)
//!   and the production binary never carries them.
//!
//! Helpers panic with a message saying what to do, as test helpers do.

#[cfg(any(test, feature = "kms-fakes"))]
mod azure_fake;
#[cfg(any(test, feature = "kms-fakes"))]
mod gcp_fake;
mod moto;

#[cfg(any(test, feature = "kms-fakes"))]
pub use azure_fake::AzureFake;
#[cfg(any(test, feature = "kms-fakes"))]
pub use gcp_fake::GcpFake;
pub use moto::Moto;

/// Serves `router` on a free 127.0.0.1 port; returns its base URL and the server task.
#[cfg(any(test, feature = "kms-fakes"))]
async fn serve(router: axum::Router) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0 for a KMS fake");
    let addr = listener
        .local_addr()
        .expect("local address of the KMS fake");
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (format!("http://{addr}"), task)
}

/// An XChaCha20-Poly1305 "KMS key" of the fakes: `nonce || ciphertext`, with `aad`.
#[cfg(any(test, feature = "kms-fakes"))]
fn fake_encrypt(key: &[u8; 32], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
    use chacha20poly1305::{Key, XChaCha20Poly1305};
    let cipher = XChaCha20Poly1305::new(&Key::from(*key));
    let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
    let mut out = nonce.to_vec();
    out.extend(
        cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .expect("fake encryption"),
    );
    out
}

#[cfg(any(test, feature = "kms-fakes"))]
fn fake_decrypt(key: &[u8; 32], aad: &[u8], ciphertext: &[u8]) -> Option<Vec<u8>> {
    use chacha20poly1305::aead::{Aead, KeyInit, Payload};
    use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
    if ciphertext.len() < 24 {
        return None;
    }
    let (nonce, ct) = ciphertext.split_at(24);
    let nonce = XNonce::from(<[u8; 24]>::try_from(nonce).ok()?);
    XChaCha20Poly1305::new(&Key::from(*key))
        .decrypt(&nonce, Payload { msg: ct, aad })
        .ok()
}

#[cfg(any(test, feature = "kms-fakes"))]
fn random_key() -> [u8; 32] {
    use rand::RngCore;
    let mut key = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut key);
    key
}

#[cfg(any(test, feature = "kms-fakes"))]
fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

#[cfg(any(test, feature = "kms-fakes"))]
fn form(body: &[u8]) -> std::collections::HashMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

/// A throwaway RSA key pair (generated for these tests only; it protects nothing) for the
/// service-account JSON the GCP fake hands out.
#[cfg(any(test, feature = "kms-fakes"))]
pub const TEST_RSA_PRIVATE_KEY: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQCr0yp32bBvrDio\n\
OhSiAZUX1Ny9aLxF2IkQUC7Cb5nZNnKLGokgP6sFDmaue9B87C3YZUbksWNnjQeP\n\
FAfbeS6gcva/ywA5VbmufxLQ1UDZ22+pVSQG/ApcejH+MvuHkhF8yUtYEiKPsUZ9\n\
TNU/vNfR2pqjaXf9bxUFYHm95sI9nMv50IxxE8GvqKtmaMFjXTHfkAeCLPXXRyD+\n\
G2YYtloemGNArRSSj0tE1AR3Qrqnv8ygSMgwFoYukix89npLJovJgWXlXD8mSVM0\n\
b8EyneEGr4fd4ZNyU3e+DVp+N44HxI+Sw/FlOgF+ihChKYElDUUxwCzo+bwgjV11\n\
3LqXs6F3AgMBAAECggEAAQ9+GRxGWwIYnW0yWGejGHEPZbniQ5oZCnk8OKYAsJcF\n\
8PbadtD9yLu0hYotGMBKbiX94IZ5wxdbPxZUEBY44/Ohs0BZAYGWck3Fe3V9f3q7\n\
vzNP1B01ISn96gA9jjIoGnmRlfsSrIlfEoHpZQnQ2TI8txp9C5rmadCVH8dvVnsB\n\
KNmM7Po+EVbVaGXeoDGQtfKsycaE/O2oUJIOH4rW01ktmdHSjdQnrCV7mo3uVIcS\n\
o9SYPjiB+C8B5kYHL30owfTKraz2TSpfeQ5kweX3Azh0KphKC9btZvyA71C0BWxB\n\
ovpWuoZKsCeSB+9HA1+x5vVbhdloTNQARA2sIAHNRQKBgQDu/ZLmiONYomGonMSv\n\
uYUq04krZC544flVRCAb3zkko3cnD90YXedAgw4jzH2Ep4l6A88C6DYBAy98MzVf\n\
tFaKlyYo1jKNCm8vJ+H4V0z+WMxyBpzFZUCK41mywJdcY1Jtz3jf5uNtzCYjnmmH\n\
JbV/e+/zmVmaxa0CxoclEvbe9QKBgQC4DdQZY8+NEwkmFRgwAG1yoNNydSMHRoly\n\
+p4iSpnFqLHhX7Gv2RKue2zMtTDfo46A32mV7nt0l/BmsjmxhTCt5mEqaPFiSP4g\n\
nO9dtxnhnNIRskX7OHFjQeu3C2H1cF+9npoMM1Q6LaNpr1S8gyqpxDSMFmTcidXa\n\
LQAIRc/jOwKBgQCIs7UGdwCMH337A4kh9t1sTMmmb0yByshi9G/lYX7/LR2n01Ql\n\
bvkrFovNAFg/u9FQYMNVp1vUomzT/zqlfrMN3T1vmG4b7P8CGy8PbWhWCJcRFiUw\n\
aCVODJOvQqiRqSJqO4WplRk8Ic0jDKbSLkiuHkd3sJzngfDfqI1/MGTTzQKBgAJw\n\
DHMZo1IXAnQCq4NXPhvajXJiosgh4wgm0Zlaq5a2mUSG4++UTG8LK3G6pJ8Rp32F\n\
d/yIYBI3QPPbQHBddzuWZYsOQMQwe00rRvBS0IDwdsfNOKgPI1FROjH+cJmzl1EH\n\
nLq0o1Tx7cwkilbE1ffRpXCFi2hwWui819dENXCpAoGBAIEw8V4Rl6O6/nFy9zxD\n\
6Vru55Yuyegfgh98WTgb9kF/t6Su0mNeMmRiDB21d1L4z1kiuXHPMU9YJ8N2iiLy\n\
PJsMG887Zkubr3ZlQW8Fmn2iuxnxSsT906b4us8wWwyJRQ+Nr+hxoL0lUGfAERTA\n\
pqpHuDIZL0RPaJ95jE8xmxlV\n\
-----END PRIVATE KEY-----\n\
";

/// The public half of [`TEST_RSA_PRIVATE_KEY`]; the GCP fake verifies assertions with it.
#[cfg(any(test, feature = "kms-fakes"))]
pub const TEST_RSA_PUBLIC_KEY: &str = "\
-----BEGIN PUBLIC KEY-----\n\
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAq9Mqd9mwb6w4qDoUogGV\n\
F9TcvWi8RdiJEFAuwm+Z2TZyixqJID+rBQ5mrnvQfOwt2GVG5LFjZ40HjxQH23ku\n\
oHL2v8sAOVW5rn8S0NVA2dtvqVUkBvwKXHox/jL7h5IRfMlLWBIij7FGfUzVP7zX\n\
0dqao2l3/W8VBWB5vebCPZzL+dCMcRPBr6irZmjBY10x35AHgiz110cg/htmGLZa\n\
HphjQK0Uko9LRNQEd0K6p7/MoEjIMBaGLpIsfPZ6SyaLyYFl5Vw/JklTNG/BMp3h\n\
Bq+H3eGTclN3vg1afjeOB8SPksPxZToBfooQoSmBJQ1FMcAs6Pm8II1dddy6l7Oh\n\
dwIDAQAB\n\
-----END PUBLIC KEY-----\n\
";
