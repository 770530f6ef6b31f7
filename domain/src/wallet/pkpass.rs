//! `.pkpass` bundles: pass.json from the pass type and the pass's data, a manifest of
//! SHA-1 hashes, and a detached PKCS#7 signature by the Pass Type ID certificate with
//! the WWDR intermediate, zipped.

use std::io::{Cursor, Write};

use openssl::pkcs7::{Pkcs7, Pkcs7Flags};
use openssl::pkey::PKey;
use openssl::stack::Stack;
use openssl::x509::X509;
use serde_json::{json, Map, Value};
use sha1::{Digest, Sha1};
use zip::write::SimpleFileOptions;

use super::credentials::AppleCredentials;
use super::pass_types::{AppleDesign, FieldDef};
use crate::error::{DomainError, Result};
use crate::passes::Pass;

pub const CONTENT_TYPE: &str = "application/vnd.apple.pkpass";

const ICON: &[u8] = include_bytes!("../../assets/icon.png");

fn field_json(field: &FieldDef, pass: &Pass) -> Option<Value> {
    let value = match field.resolve(&pass.additional_data)? {
        Value::Bool(b) => Value::String(b.to_string()),
        v @ (Value::String(_) | Value::Number(_)) => v,
        other => Value::String(other.to_string()),
    };
    let mut out = Map::new();
    out.insert("key".into(), json!(field.key));
    out.insert("value".into(), value);
    if let Some(label) = &field.label {
        out.insert("label".into(), json!(label));
    }
    if let Some(message) = &field.change_message {
        out.insert("changeMessage".into(), json!(message));
    }
    Some(Value::Object(out))
}

/// The pass.json of a pass of this design.
pub fn pass_json(
    pass: &Pass,
    design: &AppleDesign,
    authentication_token: &str,
    web_service_url: &str,
) -> Value {
    let group = |fields: &[FieldDef]| {
        Value::Array(fields.iter().filter_map(|f| field_json(f, pass)).collect())
    };
    let mut out = json!({
        "formatVersion": 1,
        "passTypeIdentifier": design.pass_type_identifier,
        "serialNumber": pass.id,
        "teamIdentifier": design.team_identifier,
        "organizationName": design.organization_name,
        "description": design.description,
        "authenticationToken": authentication_token,
        "webServiceURL": web_service_url,
        "barcodes": [{"format": "PKBarcodeFormatQR", "message": pass.id, "messageEncoding": "iso-8859-1"}],
    });
    for (key, value) in [
        ("foregroundColor", &design.foreground_color),
        ("backgroundColor", &design.background_color),
        ("labelColor", &design.label_color),
        ("logoText", &design.logo_text),
    ] {
        if let Some(value) = value {
            out[key] = json!(value);
        }
    }
    out[design.style.as_str()] = json!({
        "headerFields": group(&design.fields.header),
        "primaryFields": group(&design.fields.primary),
        "secondaryFields": group(&design.fields.secondary),
        "auxiliaryFields": group(&design.fields.auxiliary),
        "backFields": group(&design.fields.back),
    });
    out
}

fn sha1_hex(bytes: &[u8]) -> String {
    Sha1::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn crypto(e: openssl::error::ErrorStack) -> DomainError {
    DomainError::Internal(format!("pkpass signing failed: {e}"))
}

/// The detached PKCS#7 signature (DER) of `manifest`.
pub fn sign(manifest: &[u8], credentials: &AppleCredentials) -> Result<Vec<u8>> {
    let cert = X509::from_pem(credentials.certificate_pem.as_bytes()).map_err(crypto)?;
    let key = PKey::private_key_from_pem(credentials.private_key_pem.as_bytes()).map_err(crypto)?;
    let mut chain = Stack::new().map_err(crypto)?;
    chain
        .push(X509::from_pem(credentials.wwdr_pem.as_bytes()).map_err(crypto)?)
        .map_err(crypto)?;
    let flags = Pkcs7Flags::DETACHED | Pkcs7Flags::BINARY;
    Pkcs7::sign(&cert, &key, &chain, manifest, flags)
        .and_then(|p| p.to_der())
        .map_err(crypto)
}

/// The zipped, signed bundle for `pass_json`.
pub fn bundle(pass_json: &Value, credentials: &AppleCredentials) -> Result<Vec<u8>> {
    let pass_bytes = serde_json::to_vec_pretty(pass_json).expect("pass.json serialises");
    let files: [(&str, &[u8]); 4] = [
        ("pass.json", &pass_bytes),
        ("icon.png", ICON),
        ("icon@2x.png", ICON),
        ("logo.png", ICON),
    ];
    let manifest: Map<String, Value> = files
        .iter()
        .map(|(name, bytes)| (name.to_string(), json!(sha1_hex(bytes))))
        .collect();
    let manifest =
        serde_json::to_vec_pretty(&Value::Object(manifest)).expect("manifest serialises");
    let signature = sign(&manifest, credentials)?;
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    let zipped =
        |e: zip::result::ZipError| DomainError::Internal(format!("pkpass zip failed: {e}"));
    for (name, bytes) in files.iter().copied().chain([
        ("manifest.json", &manifest[..]),
        ("signature", &signature[..]),
    ]) {
        zip.start_file(name, options).map_err(zipped)?;
        zip.write_all(bytes)
            .map_err(|e| DomainError::Internal(e.to_string()))?;
    }
    Ok(zip.finish().map_err(zipped)?.into_inner())
}

/// The token a device presents as `Authorization: ApplePass <token>` for this pass:
/// derived from the master key, so it is never stored.
pub fn authentication_token(core: &crate::core::Core, tenant_id: &str, pass_id: &str) -> String {
    core.master_key
        .derive_token(&format!("applepass/{tenant_id}/{pass_id}"))
}

/// PassKit's web service for a tenant: public URL + `/api/{tenantId}/wallet/apple`.
pub fn web_service_url(public_url: &str, tenant_id: &str) -> String {
    format!("{public_url}/api/{tenant_id}/wallet/apple")
}

/// The signed bundle of a pass, with the pass it was built from.
pub async fn for_pass(
    core: &crate::core::Core,
    tenant_id: &str,
    pass_id: &str,
    public_url: &str,
) -> Result<(Vec<u8>, Pass)> {
    let pass = crate::passes::get(&core.db, tenant_id, pass_id).await?;
    let design = super::pass_types::get(&core.db, tenant_id, &pass.pass_type)
        .await?
        .and_then(|t| t.apple)
        .ok_or_else(|| {
            DomainError::Conflict(format!(
                "pass type {:?} has no Apple design",
                pass.pass_type
            ))
        })?;
    let credentials = super::credentials::apple(core.vault(), tenant_id)
        .await?
        .ok_or_else(|| {
            DomainError::Conflict("upload the Apple Pass Type ID certificate first".into())
        })?;
    let token = authentication_token(core, tenant_id, &pass.id);
    let json = pass_json(
        &pass,
        &design,
        &token,
        &web_service_url(public_url, tenant_id),
    );
    Ok((bundle(&json, &credentials)?, pass))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wallet::pass_types::AppleFields;

    #[test]
    fn pass_json_binds_fields_to_the_pass_data() {
        let pass = Pass {
            id: "pass_1".into(),
            pass_type: "loyalty".into(),
            identifiers: Default::default(),
            additional_data: json!({"points": 120, "vip": true})
                .as_object()
                .unwrap()
                .clone(),
            metadata: Default::default(),
            version: 3,
            created_at: String::new(),
            updated_at: String::new(),
        };
        let design = AppleDesign {
            pass_type_identifier: "pass.test".into(),
            team_identifier: "TEAM".into(),
            organization_name: "Org".into(),
            description: "Card".into(),
            style: "storeCard".into(),
            foreground_color: Some("rgb(255,255,255)".into()),
            background_color: None,
            label_color: None,
            logo_text: None,
            fields: AppleFields {
                primary: vec![FieldDef {
                    key: "points".into(),
                    value_from: Some("points".into()),
                    change_message: Some("Now %@ points".into()),
                    ..Default::default()
                }],
                secondary: vec![
                    FieldDef {
                        key: "vip".into(),
                        value_from: Some("vip".into()),
                        ..Default::default()
                    },
                    FieldDef {
                        key: "missing".into(),
                        value_from: Some("nothing".into()),
                        ..Default::default()
                    },
                    FieldDef {
                        key: "fixed".into(),
                        value: Some("Welcome".into()),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            },
        };
        let json = pass_json(
            &pass,
            &design,
            "token-0123456789abcdef",
            "https://x/api/t/wallet/apple",
        );
        assert_eq!(json["serialNumber"], "pass_1");
        assert_eq!(
            json["storeCard"]["primaryFields"][0],
            json!({"key": "points", "value": 120, "changeMessage": "Now %@ points"})
        );
        assert_eq!(
            json["storeCard"]["secondaryFields"],
            json!([{"key": "vip", "value": "true"}, {"key": "fixed", "value": "Welcome"}])
        );
        assert_eq!(json["foregroundColor"], "rgb(255,255,255)");
        assert!(json.get("backgroundColor").is_none());
    }
}
