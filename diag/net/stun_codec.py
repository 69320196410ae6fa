"""STUN message codec (RFC 5389/8489 with the RFC 5780 and RFC 3489 attributes the NAT check uses).

Encodes requests and decodes whatever comes back. Anything that arrives from the network is
hostile until proven otherwise: ``decode`` either returns a ``StunMessage`` whose attribute list
was walked completely inside the datagram, or raises ``StunDecodeError`` (and nothing else), which
the check turns into evidence. Attribute accessors decode lazily and raise the same exception for
a malformed value, so a broken OTHER-ADDRESS cannot hide a good XOR-MAPPED-ADDRESS.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import ipaddress
import os
import stringprep
import struct
import unicodedata
from dataclasses import dataclass, field

MAGIC_COOKIE = 0x2112A442
_COOKIE_BYTES = struct.pack("!I", MAGIC_COOKIE)
HEADER_LEN = 20
# The FINGERPRINT attribute's CRC-32 is XORed with this ("STUN" in ASCII), RFC 5389 15.5.
FINGERPRINT_XOR = 0x5354554E
# A STUN message over UDP must fit a datagram; 64 KiB is the hard upper bound of its length field.
MAX_MESSAGE_LEN = 0xFFFF + HEADER_LEN

# Methods and classes (RFC 5389 6): the class bits are interleaved with the method bits.
BINDING = 0x001
CLASS_REQUEST = 0b00
CLASS_INDICATION = 0b01
CLASS_SUCCESS = 0b10
CLASS_ERROR = 0b11

BINDING_REQUEST = 0x0001
BINDING_SUCCESS = 0x0101
BINDING_ERROR = 0x0111

# Attribute types.
MAPPED_ADDRESS = 0x0001
RESPONSE_ADDRESS = 0x0002  # RFC 3489, obsolete
CHANGE_REQUEST = 0x0003  # RFC 5780
SOURCE_ADDRESS = 0x0004  # RFC 3489
CHANGED_ADDRESS = 0x0005  # RFC 3489
USERNAME = 0x0006
MESSAGE_INTEGRITY = 0x0008
ERROR_CODE = 0x0009
UNKNOWN_ATTRIBUTES = 0x000A
REALM = 0x0014
NONCE = 0x0015
XOR_MAPPED_ADDRESS = 0x0020
PADDING = 0x0026  # RFC 5780
RESPONSE_PORT = 0x0027  # RFC 5780
SOFTWARE = 0x8022
ALTERNATE_SERVER = 0x8023
FINGERPRINT = 0x8028
RESPONSE_ORIGIN = 0x802B  # RFC 5780
OTHER_ADDRESS = 0x802C  # RFC 5780

# CHANGE-REQUEST flags (RFC 5780 7.2).
CHANGE_IP = 0x04
CHANGE_PORT = 0x02

_FAMILY_V4 = 0x01
_FAMILY_V6 = 0x02

Address = tuple[str, int]


class StunDecodeError(ValueError):
    """The bytes are not a well-formed STUN message (or a malformed attribute was read)."""


@dataclass(frozen=True)
class StunMessage:
    """One STUN message: type, transaction id and the raw attributes in wire order.

    ``transaction_id`` is 12 bytes for RFC 5389 messages (``classic`` False: the magic cookie is
    present) and 16 bytes for RFC 3489 ("classic") messages, whose whole 128-bit id is random.
    """

    msg_type: int
    transaction_id: bytes
    attributes: tuple[tuple[int, bytes], ...] = ()
    classic: bool = False
    # Offsets of each attribute's header in the encoded message (decode only), for integrity.
    offsets: tuple[int, ...] = field(default=(), compare=False)
    raw: bytes = field(default=b"", compare=False, repr=False)

    @property
    def method(self) -> int:
        return method_of(self.msg_type)

    @property
    def msg_class(self) -> int:
        return class_of(self.msg_type)

    def get(self, attr_type: int) -> bytes | None:
        """The first attribute of this type (RFC 5389: later duplicates are ignored)."""
        for t, v in self.attributes:
            if t == attr_type:
                return v
        return None

    def address(self, attr_type: int) -> Address | None:
        """A decoded address attribute; XOR-coded types are un-XORed with this message's id."""
        value = self.get(attr_type)
        if value is None:
            return None
        xored = attr_type in (XOR_MAPPED_ADDRESS, 0x8020)
        return decode_address(value, self.transaction_id if xored else None, self.classic)

    @property
    def xor_mapped_address(self) -> Address | None:
        return self.address(XOR_MAPPED_ADDRESS)

    @property
    def mapped_address(self) -> Address | None:
        return self.address(MAPPED_ADDRESS)

    @property
    def other_address(self) -> Address | None:
        """RFC 5780 OTHER-ADDRESS, or the RFC 3489 CHANGED-ADDRESS it replaced."""
        return self.address(OTHER_ADDRESS) or self.address(CHANGED_ADDRESS)

    @property
    def response_origin(self) -> Address | None:
        return self.address(RESPONSE_ORIGIN) or self.address(SOURCE_ADDRESS)

    @property
    def error_code(self) -> tuple[int, str] | None:
        value = self.get(ERROR_CODE)
        if value is None:
            return None
        if len(value) < 4:
            raise StunDecodeError("ERROR-CODE shorter than 4 bytes")
        code = (value[2] & 0x07) * 100 + value[3]
        return code, value[4:].decode("utf-8", "replace")[:128]


def message_type(method: int, msg_class: int) -> int:
    """The 14-bit type field from a 12-bit method and a 2-bit class (RFC 5389 6, figure 3)."""
    m = method & 0xFFF
    return (
        (m & 0x000F)
        | ((m & 0x0070) << 1)
        | ((m & 0x0F80) << 2)
        | ((msg_class & 0b01) << 4)
        | ((msg_class & 0b10) << 7)
    )


def method_of(msg_type: int) -> int:
    return (msg_type & 0x000F) | ((msg_type & 0x00E0) >> 1) | ((msg_type & 0x3E00) >> 2)


def class_of(msg_type: int) -> int:
    return ((msg_type >> 4) & 0b01) | ((msg_type >> 7) & 0b10)


def new_transaction_id(classic: bool = False) -> bytes:
    """A random transaction id: 96 bits (RFC 5389) or 128 bits (RFC 3489)."""
    return os.urandom(16 if classic else 12)


def _pad(n: int) -> int:
    return (4 - n % 4) % 4


def encode_address(addr: Address, transaction_id: bytes | None = None) -> bytes:
    """The value of a (XOR-)MAPPED-ADDRESS-style attribute; XORed when ``transaction_id`` given."""
    host, port = addr
    ip = ipaddress.ip_address(host)
    family = _FAMILY_V4 if ip.version == 4 else _FAMILY_V6
    raw = ip.packed
    if transaction_id is not None:
        port ^= MAGIC_COOKIE >> 16
        key = _COOKIE_BYTES + transaction_id
        raw = bytes(a ^ b for a, b in zip(raw, key, strict=False))
    return struct.pack("!BBH", 0, family, port) + raw


def decode_address(value: bytes, transaction_id: bytes | None, classic: bool = False) -> Address:
    """Decodes an address attribute value; raises ``StunDecodeError`` when malformed."""
    if len(value) < 4:
        raise StunDecodeError("address attribute shorter than 4 bytes")
    family, port = value[1], struct.unpack("!H", value[2:4])[0]
    raw = value[4:]
    if family == _FAMILY_V4:
        if len(raw) != 4:
            raise StunDecodeError(f"IPv4 address attribute with {len(raw)} address bytes")
    elif family == _FAMILY_V6:
        if len(raw) != 16:
            raise StunDecodeError(f"IPv6 address attribute with {len(raw)} address bytes")
    else:
        raise StunDecodeError(f"unknown address family {family:#04x}")
    if transaction_id is not None:
        if classic:
            # XOR-MAPPED-ADDRESS in a message without the magic cookie has no defined meaning.
            raise StunDecodeError("XOR address in a message without the magic cookie")
        port ^= MAGIC_COOKIE >> 16
        key = _COOKIE_BYTES + transaction_id
        raw = bytes(a ^ b for a, b in zip(raw, key, strict=False))
    return str(ipaddress.ip_address(raw)), port


def encode(
    msg: StunMessage,
    *,
    integrity_key: bytes | None = None,
    fingerprint: bool = False,
    pad_byte: bytes = b"\x00",
) -> bytes:
    """The wire form of ``msg``, optionally with MESSAGE-INTEGRITY and FINGERPRINT appended.

    Padding content is arbitrary (RFC 5389 15); ``pad_byte`` lets a test reproduce a vector whose
    sender padded with spaces.
    """
    tid = msg.transaction_id
    if msg.classic:
        if len(tid) != 16:
            raise ValueError("a classic (RFC 3489) transaction id is 16 bytes")
        head_id = tid
    else:
        if len(tid) != 12:
            raise ValueError("an RFC 5389 transaction id is 12 bytes")
        head_id = _COOKIE_BYTES + tid
    body = bytearray()
    for attr_type, value in msg.attributes:
        body += struct.pack("!HH", attr_type, len(value)) + value + pad_byte[:1] * _pad(len(value))

    def header(length: int) -> bytes:
        return struct.pack("!HH", msg.msg_type & 0x3FFF, length) + head_id

    if integrity_key is not None:
        # The length covers up to and including MESSAGE-INTEGRITY while the HMAC is computed.
        length = len(body) + 24
        mac = hmac.new(integrity_key, header(length) + bytes(body), hashlib.sha1).digest()
        body += struct.pack("!HH", MESSAGE_INTEGRITY, 20) + mac
    if fingerprint:
        length = len(body) + 8
        crc = binascii.crc32(header(length) + bytes(body)) ^ FINGERPRINT_XOR
        body += struct.pack("!HHI", FINGERPRINT, 4, crc & 0xFFFFFFFF)
    return header(len(body)) + bytes(body)


def decode(data: bytes) -> StunMessage:
    """Parses one datagram; raises ``StunDecodeError`` for anything that is not STUN."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise StunDecodeError("not bytes")
    data = bytes(data)
    if len(data) < HEADER_LEN:
        raise StunDecodeError(f"{len(data)} bytes: shorter than a STUN header")
    if len(data) > MAX_MESSAGE_LEN:
        raise StunDecodeError("longer than any STUN message")
    msg_type, length = struct.unpack("!HH", data[:4])
    if msg_type & 0xC000:
        raise StunDecodeError("the two top bits of a STUN message are zero")
    if length % 4:
        raise StunDecodeError(f"message length {length} is not a multiple of 4")
    if HEADER_LEN + length != len(data):
        raise StunDecodeError(f"message length {length} != {len(data) - HEADER_LEN} bytes received")
    classic = data[4:8] != _COOKIE_BYTES
    tid = data[4:20] if classic else data[8:20]
    attrs: list[tuple[int, bytes]] = []
    offsets: list[int] = []
    pos = HEADER_LEN
    while pos < len(data):
        if pos + 4 > len(data):
            raise StunDecodeError("truncated attribute header")
        attr_type, attr_len = struct.unpack("!HH", data[pos : pos + 4])
        end = pos + 4 + attr_len
        if end > len(data):
            raise StunDecodeError(f"attribute {attr_type:#06x} runs past the end of the message")
        attrs.append((attr_type, data[pos + 4 : end]))
        offsets.append(pos)
        padded = end + _pad(attr_len)
        # Classic servers were allowed unpadded attributes; only a pad past the end is an error.
        if padded > len(data):
            raise StunDecodeError(f"attribute {attr_type:#06x} padding runs past the end")
        pos = padded
    return StunMessage(msg_type, tid, tuple(attrs), classic, tuple(offsets), data)


def verify_fingerprint(msg: StunMessage) -> bool | None:
    """True/False when the message carries FINGERPRINT as its last attribute; None without one."""
    if not msg.attributes or msg.attributes[-1][0] != FINGERPRINT or not msg.raw:
        return None
    value = msg.attributes[-1][1]
    if len(value) != 4:
        return False
    off = msg.offsets[-1]
    crc = binascii.crc32(msg.raw[:off]) ^ FINGERPRINT_XOR
    return int.from_bytes(value, "big") == crc & 0xFFFFFFFF


def verify_integrity(msg: StunMessage, key: bytes) -> bool | None:
    """Checks MESSAGE-INTEGRITY (HMAC-SHA1) with ``key``; None when the message has none."""
    for i, (attr_type, value) in enumerate(msg.attributes):
        if attr_type != MESSAGE_INTEGRITY:
            continue
        if len(value) != 20 or not msg.raw:
            return False
        off = msg.offsets[i]
        # The length field is rewritten to end just after MESSAGE-INTEGRITY (RFC 5389 15.4).
        head = msg.raw[:2] + struct.pack("!H", off + 24 - HEADER_LEN) + msg.raw[4:HEADER_LEN]
        mac = hmac.new(key, head + msg.raw[HEADER_LEN:off], hashlib.sha1).digest()
        return hmac.compare_digest(mac, value)
    return None


def saslprep(text: str) -> str:
    """RFC 4013 SASLprep (mapping, NFKC, prohibited output): how STUN passwords are prepared."""
    mapped = []
    for ch in text:
        if stringprep.in_table_b1(ch):
            continue  # "commonly mapped to nothing", e.g. SOFT HYPHEN
        mapped.append(" " if stringprep.in_table_c12(ch) else ch)
    out = unicodedata.normalize("NFKC", "".join(mapped))
    for ch in out:
        if (
            stringprep.in_table_c12(ch)
            or stringprep.in_table_c21_c22(ch)
            or stringprep.in_table_c3(ch)
            or stringprep.in_table_c4(ch)
            or stringprep.in_table_c5(ch)
            or stringprep.in_table_c6(ch)
            or stringprep.in_table_c7(ch)
            or stringprep.in_table_c8(ch)
            or stringprep.in_table_c9(ch)
            or stringprep.in_table_a1(ch)
        ):
            raise ValueError("prohibited character in SASLprep input")
    return out


def short_term_key(password: str) -> bytes:
    """The HMAC key for short-term credentials: SASLprep(password) (RFC 5389 15.4)."""
    return saslprep(password).encode("utf-8")


def long_term_key(username: str, realm: str, password: str) -> bytes:
    """The HMAC key for long-term credentials: MD5(username ":" realm ":" SASLprep(password))."""
    text = f"{username}:{realm}:{saslprep(password)}"
    return hashlib.md5(text.encode("utf-8")).digest()


def binding_request(
    transaction_id: bytes | None = None,
    *,
    change_ip: bool = False,
    change_port: bool = False,
    response_port: int | None = None,
    classic: bool = False,
    software: str | None = None,
) -> tuple[bytes, bytes]:
    """A Binding request and its transaction id.

    ``classic`` builds an RFC 3489 request (no magic cookie): old servers and NAT ALGs answer it
    with a plain MAPPED-ADDRESS. FINGERPRINT is added to RFC 5389 requests so that a server can
    tell them from other protocols multiplexed on its port.
    """
    tid = transaction_id or new_transaction_id(classic)
    attrs: list[tuple[int, bytes]] = []
    if software:
        attrs.append((SOFTWARE, software.encode("utf-8")[:127]))
    if change_ip or change_port:
        flags = (CHANGE_IP if change_ip else 0) | (CHANGE_PORT if change_port else 0)
        attrs.append((CHANGE_REQUEST, struct.pack("!I", flags)))
    if response_port is not None:
        attrs.append((RESPONSE_PORT, struct.pack("!HH", response_port, 0)))
    msg = StunMessage(BINDING_REQUEST, tid, tuple(attrs), classic)
    return encode(msg, fingerprint=not classic), tid


def binding_response(
    request: StunMessage,
    mapped: Address,
    *,
    origin: Address | None = None,
    other: Address | None = None,
    plain_mapped: Address | None = None,
) -> bytes:
    """A Binding success response (used by the test server and the hairpin probe)."""
    attrs: list[tuple[int, bytes]] = []
    if request.classic:
        attrs.append((MAPPED_ADDRESS, encode_address(plain_mapped or mapped)))
    else:
        attrs.append((XOR_MAPPED_ADDRESS, encode_address(mapped, request.transaction_id)))
        attrs.append((MAPPED_ADDRESS, encode_address(plain_mapped or mapped)))
    if origin is not None:
        attrs.append((RESPONSE_ORIGIN, encode_address(origin)))
    if other is not None:
        attrs.append((OTHER_ADDRESS, encode_address(other)))
    msg = StunMessage(BINDING_SUCCESS, request.transaction_id, tuple(attrs), request.classic)
    return encode(msg, fingerprint=not request.classic)
