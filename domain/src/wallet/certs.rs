//! Self-generated certificates for the demo tenant and for tests: a stand-in for
//! Apple's WWDR CA and a Pass Type ID certificate it signs. Never for production.

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{BasicConstraints, KeyUsage};
use openssl::x509::{X509Builder, X509NameBuilder, X509};

/// PEMs of a test CA and of a Pass Type ID certificate and key it issued.
pub struct TestCertificates {
    pub ca_pem: String,
    pub certificate_pem: String,
    pub private_key_pem: String,
    /// An EC P-256 key, as APNs token authentication uses (`.p8`).
    pub apns_key_p8: String,
}

fn name(common_name: &str, uid: Option<&str>) -> openssl::x509::X509Name {
    let mut builder = X509NameBuilder::new().expect("name builder");
    if let Some(uid) = uid {
        builder.append_entry_by_nid(Nid::USERID, uid).expect("uid");
    }
    builder
        .append_entry_by_nid(Nid::COMMONNAME, common_name)
        .expect("cn");
    builder
        .append_entry_by_text("O", "Passhook test")
        .expect("o");
    builder.build()
}

fn build(
    subject: &openssl::x509::X509Name,
    issuer: &openssl::x509::X509Name,
    key: &PKey<Private>,
    signer: &PKey<Private>,
    ca: bool,
) -> X509 {
    let mut b = X509Builder::new().expect("x509 builder");
    b.set_version(2).expect("version");
    let mut serial = BigNum::new().expect("bn");
    serial.rand(64, MsbOption::MAYBE_ZERO, false).expect("rand");
    b.set_serial_number(&serial.to_asn1_integer().expect("serial"))
        .expect("serial");
    b.set_subject_name(subject).expect("subject");
    b.set_issuer_name(issuer).expect("issuer");
    b.set_pubkey(key).expect("pubkey");
    b.set_not_before(&Asn1Time::days_from_now(0).expect("time"))
        .expect("not before");
    b.set_not_after(&Asn1Time::days_from_now(365).expect("time"))
        .expect("not after");
    if ca {
        b.append_extension(BasicConstraints::new().critical().ca().build().expect("bc"))
            .expect("bc");
        b.append_extension(
            KeyUsage::new()
                .key_cert_sign()
                .crl_sign()
                .build()
                .expect("ku"),
        )
        .expect("ku");
    } else {
        b.append_extension(KeyUsage::new().digital_signature().build().expect("ku"))
            .expect("ku");
    }
    b.sign(signer, MessageDigest::sha256()).expect("sign");
    b.build()
}

fn utf8(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).expect("PEM is ASCII")
}

/// A fresh test CA and a Pass Type ID certificate for `pass_type_identifier`.
pub fn generate(pass_type_identifier: &str) -> TestCertificates {
    let ca_key = PKey::from_rsa(Rsa::generate(2048).expect("rsa")).expect("pkey");
    let ca_name = name("Passhook Test WWDR CA", None);
    let ca = build(&ca_name, &ca_name, &ca_key, &ca_key, true);
    let key = PKey::from_rsa(Rsa::generate(2048).expect("rsa")).expect("pkey");
    let subject = name(
        &format!("Pass Type ID: {pass_type_identifier}"),
        Some(pass_type_identifier),
    );
    let cert = build(&subject, &ca_name, &key, &ca_key, false);
    let ec = EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("p-256"))
        .expect("ec");
    TestCertificates {
        ca_pem: utf8(ca.to_pem().expect("pem")),
        certificate_pem: utf8(cert.to_pem().expect("pem")),
        private_key_pem: utf8(key.private_key_to_pem_pkcs8().expect("pem")),
        apns_key_p8: utf8(
            PKey::from_ec_key(ec)
                .expect("pkey")
                .private_key_to_pem_pkcs8()
                .expect("pem"),
        ),
    }
}

/// A fresh RSA private key as PKCS#8 PEM (a Google service account's key).
pub fn generate_rsa_pem() -> String {
    let key = PKey::from_rsa(Rsa::generate(2048).expect("rsa")).expect("pkey");
    utf8(key.private_key_to_pem_pkcs8().expect("pem"))
}

/// The public half of a PEM private key, as PEM (for fakes that check signatures).
pub fn public_pem_of(private_pem: &str) -> String {
    let key = PKey::private_key_from_pem(private_pem.as_bytes()).expect("a PEM private key");
    utf8(key.public_key_to_pem().expect("pem"))
}
