"""The lab's PKI: a throw-away CA and server certificates for the platform's HTTPS status API.

CLI::

    python -m diag.lab.emulators.pki --out DIR [--name server] [--san NAME ...] [--ip IP ...]

writes ``DIR/ca.crt`` and ``DIR/ca.key`` (reused when they already exist, so several servers can
share one CA) and ``DIR/<name>.crt`` / ``DIR/<name>.key`` valid for the given DNS names and IP
addresses, and prints the four paths as JSON. Library: ``make_ca(dir)`` and
``make_server_cert(dir, ca, sans)``. Keys are EC P-256: generating one takes milliseconds, so a lab
comes up fast.
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

# Backdating by an hour tolerates a lab namespace or CI box whose clock is slightly behind.
BACKDATE = dt.timedelta(hours=1)
# A lab lives for minutes; a year is long enough that no test ever meets an expired certificate.
CA_VALIDITY = dt.timedelta(days=365)
SERVER_VALIDITY = dt.timedelta(days=365)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # The key is created 0600 from the start, never readable by others even for a moment.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _load_key(path: Path) -> CertificateIssuerPrivateKeyTypes:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path}: not an EC private key")
    return key


def make_ca(directory: str | Path, common_name: str = "diag lab CA") -> tuple[Path, Path]:
    """Creates ``ca.crt`` and ``ca.key`` in ``directory`` (reusing them if both exist)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = d / "ca.crt", d / "ca.key"
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    _write_key(key_path, key)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def _san(entry: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(entry))
    except ValueError:
        return x509.DNSName(entry)


def make_server_cert(
    directory: str | Path,
    ca: tuple[str | Path, str | Path],
    sans: list[str],
    name: str = "server",
) -> tuple[Path, Path]:
    """Creates ``<name>.crt`` and ``<name>.key`` in ``directory``, signed by ``ca`` (cert, key).

    ``sans`` mixes DNS names and IP addresses (an entry that parses as an IP is an IP SAN); the
    first one is also the subject's common name.
    """
    if not sans:
        raise ValueError("a server certificate needs at least one name or IP address")
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    ca_cert = x509.load_pem_x509_certificate(Path(ca[0]).read_bytes())
    ca_key = _load_key(Path(ca[1]))
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, sans[0][:64])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + SERVER_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([_san(s) for s in sans]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = d / f"{name}.crt", d / f"{name}.key"
    _write_key(key_path, key)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m diag.lab.emulators.pki", description=__doc__.splitlines()[0]
    )
    ap.add_argument("--out", required=True, help="directory for the CA and the certificate")
    ap.add_argument("--name", default="server", help="file name stem of the server certificate")
    ap.add_argument("--san", action="append", default=[], help="DNS name (repeatable)")
    ap.add_argument("--ip", action="append", default=[], help="IP address (repeatable)")
    args = ap.parse_args(argv)
    for ip in args.ip:
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            ap.error(f"--ip {ip!r} is not an IP address")
    sans = [*args.san, *args.ip]
    if not sans:
        ap.error("give at least one --san or --ip")
    try:
        ca = make_ca(args.out)
        cert, key = make_server_cert(args.out, ca, sans, name=args.name)
    except (OSError, ValueError) as exc:
        print(f"pki: {exc}", file=sys.stderr)
        return 1
    out = {"ca_cert": str(ca[0]), "ca_key": str(ca[1]), "cert": str(cert), "key": str(key)}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
