"""TLS certificates and SuperNode keys for a deployment, made with ``cryptography`` (a Flower dependency).

Flower does the transport and the authentication; this only writes the files its flags expect:

- ``ca.crt`` / ``ca.key``: a private certificate authority (keep ``ca.key`` at the coordinator, offline).
- ``server.pem`` / ``server.key``: the SuperLink's certificate, signed by the CA, with every host name
  and IP address the sites dial as subject alternative names (TLS checks the SAN, not the CN).
- ``nodes/<site>`` / ``nodes/<site>.pub``: one ECDSA P-384 key pair per site in OpenSSH format, the
  format ``flower-supernode --auth-supernode-private-key`` and ``flwr supernode register`` read.

``openssl`` + ``ssh-keygen`` give the same files (the README shows both); this module exists so a
coordinator, the loopback rehearsal and the tests need nothing beyond the Python environment.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_SITE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class TlsFiles:
    """What the SuperLink serves with (``--ssl-*``) and what every client verifies against (``ca``)."""

    ca: Path
    certificate: Path
    private_key: Path


@dataclass(frozen=True)
class NodeKey:
    """One site's key pair: the private key stays at the site, the public key is registered."""

    name: str
    private_key: Path
    public_key: Path


def _write(path: Path, data: bytes, *, private: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if private:
        path.chmod(0o600)
    return path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def make_tls(out_dir: Path, hosts: list[str], *, days: int = 365) -> TlsFiles:
    """Write a CA and a SuperLink certificate valid for ``hosts`` (IPs and DNS names) into ``out_dir``."""
    if not hosts:
        raise ValueError("give at least one host name or IP address the sites will dial (e.g. 127.0.0.1)")
    out_dir = Path(out_dir)
    now = dt.datetime.now(dt.timezone.utc)
    not_before, not_after = now - dt.timedelta(minutes=5), now + dt.timedelta(days=days)

    ca_key = ec.generate_private_key(ec.SECP384R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("fedrai deployment CA"))
        .issuer_name(_name("fedrai deployment CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
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
        .sign(ca_key, hashes.SHA256())
    )

    server_key = ec.generate_private_key(ec.SECP384R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(_name(hosts[0]))
        .issuer_name(ca_cert.subject)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([_san(h) for h in hosts]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    pem = serialization.Encoding.PEM
    _write(out_dir / "ca.key", _pem_key(ca_key), private=True)
    return TlsFiles(
        ca=_write(out_dir / "ca.crt", ca_cert.public_bytes(pem)),
        certificate=_write(out_dir / "server.pem", server_cert.public_bytes(pem)),
        private_key=_write(out_dir / "server.key", _pem_key(server_key), private=True),
    )


def make_node_key(out_dir: Path, name: str) -> NodeKey:
    """Write ``out_dir/<name>`` (private, OpenSSH) and ``out_dir/<name>.pub`` for one site."""
    if not _SITE_NAME_RE.match(name):
        raise ValueError(f"site name {name!r}: use letters, digits, '.', '_' or '-' (at most 64)")
    key = ec.generate_private_key(ec.SECP384R1())
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    out_dir = Path(out_dir)
    return NodeKey(
        name=name,
        private_key=_write(out_dir / name, private, private=True),
        public_key=_write(out_dir / f"{name}.pub", public + f" {name}\n".encode()),
    )


def existing_tls(out_dir: Path) -> TlsFiles | None:
    """The TLS files in ``out_dir`` if all three are there (so a rehearsal reuses them)."""
    files = TlsFiles(Path(out_dir) / "ca.crt", Path(out_dir) / "server.pem", Path(out_dir) / "server.key")
    return files if all(p.is_file() for p in (files.ca, files.certificate, files.private_key)) else None
