//! Pass types, wallet credentials and signed `.pkpass` bundles.

mod support;

use std::io::Read;

use domain::api_keys::Scope;
use domain::wallet::certs;
use serde_json::{json, Value};
use support::{problem, TestServer};

const PASS_TYPE_ID: &str = "pass.com.passhook.test";

fn design() -> Value {
    json!({
        "name": "Loyalty card",
        "apple": {
            "passTypeIdentifier": PASS_TYPE_ID, "teamIdentifier": "TEAM123456", "organizationName": "Passhook Test",
            "description": "Loyalty card", "style": "storeCard", "backgroundColor": "rgb(79,70,229)",
            "fields": {"primary": [{"key": "points", "label": "Points", "valueFrom": "points", "changeMessage": "You now have %@ points"}],
                       "secondary": [{"key": "tier", "label": "Tier", "valueFrom": "tier"}]}
        }
    })
}

fn unzip(bytes: &[u8]) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    (0..archive.len())
        .map(|i| {
            let mut file = archive.by_index(i).unwrap();
            let mut content = Vec::new();
            file.read_to_end(&mut content).unwrap();
            (file.name().to_string(), content)
        })
        .collect()
}

/// `openssl smime -verify` of the detached signature over `manifest`.
fn openssl_verifies(
    dir: &std::path::Path,
    signature: &[u8],
    manifest: &[u8],
    ca_pem: &str,
) -> bool {
    std::fs::write(dir.join("signature"), signature).unwrap();
    std::fs::write(dir.join("manifest.json"), manifest).unwrap();
    std::fs::write(dir.join("ca.pem"), ca_pem).unwrap();
    std::process::Command::new("openssl")
        .args([
            "smime",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-purpose",
            "any",
            "-out",
            "/dev/null",
        ])
        .args([
            "-in",
            "signature",
            "-content",
            "manifest.json",
            "-CAfile",
            "ca.pem",
        ])
        .current_dir(dir)
        .output()
        .expect("openssl runs")
        .status
        .success()
}

#[tokio::test]
async fn passes_download_as_signed_pkpass_bundles() {
    for s in TestServer::all().await {
        s.tenant("acme").await;
        let key = s
            .key(
                "acme",
                &[
                    Scope::IntegrationsWrite,
                    Scope::PassesRead,
                    Scope::PassesWrite,
                ],
            )
            .await;
        let test = certs::generate(PASS_TYPE_ID);
        let put = |path: &str, body: Value| {
            s.http
                .put(s.url(path))
                .header("X-API-KEY", &key)
                .json(&body)
                .send()
        };

        assert_eq!(
            put("/api/acme/pass-types/loyalty", design())
                .await
                .unwrap()
                .status(),
            200
        );
        let created: Value = s.http.post(s.url("/api/acme/passes")).header("X-API-KEY", &key)
            .json(&json!({"passType": "loyalty", "identifiers": {"email": "ann@example.com"}, "additionalData": {"points": 120, "tier": "gold"}}))
            .send().await.unwrap().json().await.unwrap();
        let pkpass_url = s.url(&format!(
            "/api/acme/passes/{}/apple.pkpass",
            created["id"].as_str().unwrap()
        ));
        let no_certificate = s
            .http
            .get(&pkpass_url)
            .header("X-API-KEY", &key)
            .send()
            .await
            .unwrap();
        problem(no_certificate, 409).await;

        let other = certs::generate(PASS_TYPE_ID);
        let mismatched = put("/api/acme/wallet/credentials/apple", json!({"certificatePem": test.certificate_pem, "privateKeyPem": other.private_key_pem, "wwdrPem": test.ca_pem})).await.unwrap();
        assert_eq!(
            problem(mismatched, 400).await["errors"][0]["field"],
            "privateKeyPem"
        );
        let stored = put("/api/acme/wallet/credentials/apple", json!({"certificatePem": test.certificate_pem, "privateKeyPem": test.private_key_pem, "wwdrPem": test.ca_pem})).await.unwrap();
        assert_eq!(stored.status(), 200);
        let summary: Value = s
            .http
            .get(s.url("/api/acme/wallet/credentials"))
            .header("X-API-KEY", &key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(summary[0]["details"]["certificate"]
            .as_str()
            .unwrap()
            .contains(PASS_TYPE_ID));
        assert!(!summary.to_string().contains("PRIVATE KEY"));

        let response = s
            .http
            .get(&pkpass_url)
            .header("X-API-KEY", &key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"],
            "application/vnd.apple.pkpass"
        );
        assert!(response.headers().contains_key("last-modified"));
        let files = unzip(&response.bytes().await.unwrap());
        let pass: Value = serde_json::from_slice(&files["pass.json"]).unwrap();
        assert_eq!(pass["serialNumber"], created["id"]);
        assert_eq!(pass["passTypeIdentifier"], PASS_TYPE_ID);
        assert_eq!(pass["webServiceURL"], s.url("/api/acme/wallet/apple"));
        assert!(pass["authenticationToken"].as_str().unwrap().len() >= 16);
        assert_eq!(pass["storeCard"]["primaryFields"][0]["value"], 120);

        let manifest: Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
        for (name, hash) in manifest.as_object().unwrap() {
            use sha1::Digest;
            let digest: String = sha1::Sha1::digest(&files[name])
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(hash.as_str().unwrap(), digest, "{name}");
        }
        let dir = tempfile::tempdir().unwrap();
        assert!(
            openssl_verifies(
                dir.path(),
                &files["signature"],
                &files["manifest.json"],
                &test.ca_pem
            ),
            "the signature verifies against the CA"
        );
        let mut tampered = files["manifest.json"].clone();
        tampered[5] ^= 1;
        assert!(
            !openssl_verifies(dir.path(), &files["signature"], &tampered, &test.ca_pem),
            "a changed manifest does not verify"
        );
        assert!(
            !openssl_verifies(
                dir.path(),
                &files["signature"],
                &files["manifest.json"],
                &other.ca_pem
            ),
            "another CA does not verify"
        );
        s.stop().await;
    }
}

#[tokio::test]
async fn pass_types_are_validated_and_managed() {
    for s in TestServer::all().await {
        s.tenant("acme").await;
        let key = s.key("acme", &[Scope::IntegrationsWrite]).await;
        let mut bad = design();
        bad["apple"]["style"] = json!("poster");
        let response = s
            .http
            .put(s.url("/api/acme/pass-types/loyalty"))
            .header("X-API-KEY", &key)
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(
            problem(response, 400).await["errors"][0]["field"],
            "apple.style"
        );
        s.http
            .put(s.url("/api/acme/pass-types/loyalty"))
            .header("X-API-KEY", &key)
            .json(&design())
            .send()
            .await
            .unwrap();
        let list: Value = s
            .http
            .get(s.url("/api/acme/pass-types"))
            .header("X-API-KEY", &key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(list[0]["id"], "loyalty");
        let deleted = s
            .http
            .delete(s.url("/api/acme/pass-types/loyalty"))
            .header("X-API-KEY", &key)
            .send()
            .await
            .unwrap();
        assert_eq!(deleted.status(), 204);
        problem(
            s.http
                .get(s.url("/api/acme/pass-types/loyalty"))
                .header("X-API-KEY", &key)
                .send()
                .await
                .unwrap(),
            404,
        )
        .await;
        s.stop().await;
    }
}
