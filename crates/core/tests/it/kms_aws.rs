//! The AWS KMS client against a real `moto_server` (installed by `.ci/test-deps`).
//!
//! moto 5.2.1 encrypts with disabled keys and keys pending deletion, and checks key-policy
//! Deny statements only for `kms:DescribeKey`: those refusals are asserted where moto makes
//! them (DescribeKey's state, a DescribeKey denial); the mapping of AWS's other error bodies is
//! unit-tested in `kms::aws`.

use tenantops_core::kms::testing::Moto;
use tenantops_core::kms::{KeyRef, KmsError, Provider};

#[tokio::test]
async fn wrap_unwrap_and_data_keys_with_encryption_context() {
    let moto = Moto::start().await;
    let key = moto.create_key().await;
    let kms = moto.config().provider(&key).unwrap();
    assert_eq!(kms.key(), &key);

    let wrapped = kms
        .wrap(b"a 32-byte data key, more or less", "tenant-1/slack")
        .await
        .unwrap();
    assert_ne!(&wrapped[..], b"a 32-byte data key, more or less");
    let plain = kms.unwrap(&wrapped, "tenant-1/slack").await.unwrap();
    assert_eq!(&plain[..], b"a 32-byte data key, more or less");

    // The encryption context is authenticated: another aad does not open it.
    let err = kms.unwrap(&wrapped, "tenant-2/slack").await.unwrap_err();
    match &err {
        KmsError::Rejected { detail } => assert!(detail.contains("InvalidCiphertext"), "{detail}"),
        other => panic!("{other:?}"),
    }

    let (data_key, wrapped_key) = kms.generate_data_key("tenant-1/vault").await.unwrap();
    assert_ne!(*data_key, [0u8; 32]);
    let opened = kms.unwrap(&wrapped_key, "tenant-1/vault").await.unwrap();
    assert_eq!(&opened[..], &data_key[..]);
    assert!(kms.unwrap(&wrapped_key, "").await.is_err());

    // An alias ARN works for wrapping and unwrapping too.
    let alias = moto.create_alias(&key, "tenant-1").await;
    let by_alias = moto.config().provider(&alias).unwrap();
    let wrapped = by_alias.wrap(b"via alias", "x").await.unwrap();
    assert_eq!(&kms.unwrap(&wrapped, "x").await.unwrap()[..], b"via alias");
}

#[tokio::test]
async fn describe_reports_enabled_disabled_and_pending_deletion() {
    let moto = Moto::start().await;
    let key = moto.create_key().await;
    let kms = moto.config().provider(&key).unwrap();

    let info = kms.describe().await.unwrap();
    assert!(info.enabled);
    assert_eq!(info.state, "Enabled");
    assert_eq!(info.version, None);

    moto.disable_key(&key).await;
    let info = kms.describe().await.unwrap();
    assert!(!info.enabled);
    assert_eq!(info.state, "Disabled");

    moto.enable_key(&key).await;
    moto.schedule_deletion(&key).await;
    let info = kms.describe().await.unwrap();
    assert!(!info.enabled);
    assert_eq!(info.state, "PendingDeletion");
}

#[tokio::test]
async fn a_denying_key_policy_is_permission_denied() {
    let moto = Moto::start().await;
    let key = moto.create_key().await;
    moto.deny(&key, "kms:DescribeKey").await;
    let kms = moto.config().provider(&key).unwrap();
    match kms.describe().await.unwrap_err() {
        KmsError::PermissionDenied { action, detail } => {
            assert_eq!(action, "kms:DescribeKey");
            assert!(detail.starts_with("AccessDeniedException"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn an_unknown_key_is_not_found_and_another_keys_ciphertext_is_refused() {
    let moto = Moto::start().await;
    let key = moto.create_key().await;
    let other = moto.create_key().await;
    let missing = KeyRef::parse(
        Provider::Aws,
        &format!(
            "{}:key/00000000-0000-0000-0000-000000000000",
            key.id.rsplit_once(":key/").unwrap().0
        ),
        false,
    )
    .unwrap();
    let config = moto.config();
    let err = config
        .provider(&missing)
        .unwrap()
        .describe()
        .await
        .unwrap_err();
    assert!(matches!(err, KmsError::KeyNotFound { .. }), "{err:?}");
    let err = config
        .provider(&missing)
        .unwrap()
        .wrap(b"x", "a")
        .await
        .unwrap_err();
    assert!(matches!(err, KmsError::KeyNotFound { .. }), "{err:?}");

    // Decrypt passes KeyId: a ciphertext of another key is refused.
    let wrapped = config
        .provider(&other)
        .unwrap()
        .wrap(b"x", "a")
        .await
        .unwrap();
    let err = config
        .provider(&key)
        .unwrap()
        .unwrap(&wrapped, "a")
        .await
        .unwrap_err();
    assert!(matches!(err, KmsError::PermissionDenied { .. }), "{err:?}");
}
