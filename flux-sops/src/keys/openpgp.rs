//! Just enough OpenPGP packet handling for the PGP data keys GnuPG 1.x wrote.
//!
//! GnuPG 1.x framed packets with partial-body chunks shorter than the 512 bytes RFC 4880
//! asks of the first chunk, both around and *inside* the encrypted packet, and rpgp
//! rejects such streams. For those messages we split the packet stream ourselves, let
//! rpgp decrypt the session key (PKESK) and the CFB body with its MDC check
//! (`SymmetricKeyAlgorithm::decrypt_protected`), re-frame the plaintext packets with
//! definite lengths and hand them back to rpgp for the literal / compressed layer.
//! The MDC is always verified before any byte of the data key is returned; unprotected
//! (SED) packets are refused.

use std::fmt;

use pgp::composed::{Message, SignedSecretKey};
use pgp::crypto::sym::SymmetricKeyAlgorithm;
use pgp::packet::{Packet, PacketParser, PublicKeyEncryptedSessionKey};
use pgp::types::{EskType, Password, PkeskVersion};
use zeroize::Zeroizing;

use super::read_plain_message;

/// OpenPGP packet tags used here (RFC 4880 §4.3).
const TAG_PKESK: u8 = 1;
const TAG_SED: u8 = 9;
const TAG_SEIPD: u8 = 18;
/// An MDC packet: tag byte, length byte, SHA-1 digest.
const MDC_LEN: usize = 22;

/// A malformed packet stream: what is wrong and at which byte offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FramingError {
    pub offset: usize,
    pub problem: &'static str,
}

impl fmt::Display for FramingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "malformed OpenPGP packet stream at byte {}: {}",
            self.offset, self.problem
        )
    }
}

impl std::error::Error for FramingError {}

/// One packet with its body joined from all of its chunks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawPacket {
    pub tag: u8,
    pub body: Vec<u8>,
}

/// Reads `len` bytes at `*pos`, advancing it; a clear error when the stream ends early.
fn take<'a>(data: &'a [u8], pos: &mut usize, len: usize) -> Result<&'a [u8], FramingError> {
    let end = pos.checked_add(len).filter(|&end| end <= data.len());
    match end {
        Some(end) => {
            let bytes = &data[*pos..end];
            *pos = end;
            Ok(bytes)
        }
        None => Err(FramingError {
            offset: *pos,
            problem: "the stream ends inside a packet",
        }),
    }
}

fn take_u32(data: &[u8], pos: &mut usize) -> Result<usize, FramingError> {
    let bytes = take(data, pos, 4)?;
    let value = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    usize::try_from(value).map_err(|_| FramingError {
        offset: *pos - 4,
        problem: "packet length does not fit in memory",
    })
}

/// Splits a binary packet stream into packets, joining partial-body chunks of any size
/// (new format) and reading every old-format length type, including indeterminate.
pub fn split_packets(data: &[u8]) -> Result<Vec<RawPacket>, FramingError> {
    let mut packets = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let header_offset = pos;
        let header = take(data, &mut pos, 1)?[0];
        if header & 0x80 == 0 {
            return Err(FramingError {
                offset: header_offset,
                problem: "not a packet header (bit 7 is clear)",
            });
        }
        let mut body = Vec::new();
        let tag = if header & 0x40 == 0 {
            // Old format: tag in bits 5-2, length type in bits 1-0.
            let len = match header & 3 {
                0 => usize::from(take(data, &mut pos, 1)?[0]),
                1 => {
                    let bytes = take(data, &mut pos, 2)?;
                    usize::from(u16::from_be_bytes([bytes[0], bytes[1]]))
                }
                2 => take_u32(data, &mut pos)?,
                _ => data.len() - pos,
            };
            body.extend_from_slice(take(data, &mut pos, len)?);
            (header >> 2) & 0x0f
        } else {
            loop {
                let first = take(data, &mut pos, 1)?[0];
                let (len, partial) = match first {
                    0..=191 => (usize::from(first), false),
                    192..=223 => {
                        let second = take(data, &mut pos, 1)?[0];
                        (
                            ((usize::from(first) - 192) << 8) + usize::from(second) + 192,
                            false,
                        )
                    }
                    255 => (take_u32(data, &mut pos)?, false),
                    _ => (1usize << (first & 0x1f), true),
                };
                body.extend_from_slice(take(data, &mut pos, len)?);
                if !partial {
                    break;
                }
                if pos == data.len() {
                    return Err(FramingError {
                        offset: pos,
                        problem: "the stream ends after a partial-body chunk",
                    });
                }
            }
            header & 0x3f
        };
        if tag == 0 {
            return Err(FramingError {
                offset: header_offset,
                problem: "packet tag 0 is reserved",
            });
        }
        packets.push(RawPacket { tag, body });
    }
    Ok(packets)
}

/// Writes one packet in the new format with a five-byte definite length.
fn write_packet(out: &mut Vec<u8>, tag: u8, body: &[u8]) -> Result<(), FramingError> {
    let len = u32::try_from(body.len()).map_err(|_| FramingError {
        offset: out.len(),
        problem: "packet longer than 4 GiB",
    })?;
    out.push(0xC0 | tag);
    out.push(255);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(body);
    Ok(())
}

/// Rewrites every top-level packet with a definite length; the contents are unchanged.
pub fn reframe_packets(data: &[u8]) -> Result<Vec<u8>, FramingError> {
    let packets = split_packets(data)?;
    let mut out = Vec::with_capacity(data.len() + 8 * packets.len());
    for packet in &packets {
        write_packet(&mut out, packet.tag, &packet.body)?;
    }
    Ok(out)
}

/// Decrypts the body of a version 1 SEIPD packet with the session key, verifying the
/// MDC; returns the plaintext packet stream.
pub fn decrypt_seipd_v1(
    algorithm: SymmetricKeyAlgorithm,
    key: &[u8],
    body: &[u8],
) -> Result<Zeroizing<Vec<u8>>, String> {
    let Some((&version, encrypted)) = body.split_first() else {
        return Err("the encrypted packet is empty".to_string());
    };
    if version != 1 {
        return Err(format!(
            "unsupported encrypted packet version {version} (GnuPG 1.x wrote version 1)"
        ));
    }
    let block_size = algorithm.block_size();
    if block_size == 0 || key.len() != algorithm.key_size() {
        return Err(format!(
            "unsupported or mismatched symmetric algorithm {algorithm:?}"
        ));
    }
    let prefix_len = block_size + 2;
    if encrypted.len() < prefix_len + MDC_LEN {
        return Err("the encrypted packet is too short to hold its integrity check".to_string());
    }
    let mut prefix = Zeroizing::new(encrypted[..prefix_len].to_vec());
    let mut plaintext = Zeroizing::new(encrypted[prefix_len..].to_vec());
    algorithm
        .decrypt_protected(key, &mut prefix, &mut plaintext)
        .map_err(|err| format!("the encrypted packet failed its integrity check: {err}"))?;
    Ok(plaintext)
}

/// Parses one PKESK body with rpgp.
fn parse_pkesk(body: &[u8]) -> Result<PublicKeyEncryptedSessionKey, String> {
    let mut framed = Vec::with_capacity(body.len() + 6);
    write_packet(&mut framed, TAG_PKESK, body).map_err(|err| err.to_string())?;
    match PacketParser::new(&framed[..]).next() {
        Some(Ok(Packet::PublicKeyEncryptedSessionKey(pkesk))) => Ok(pkesk),
        Some(Err(err)) => Err(format!("failed to parse the encrypted session key: {err}")),
        _ => Err("failed to parse the encrypted session key".to_string()),
    }
}

/// Recovers the session key from the PKESK packets addressed to `key` (primary key or
/// any subkey); returns the symmetric algorithm and the key bytes.
fn session_key(
    pkesks: &[PublicKeyEncryptedSessionKey],
    key: &SignedSecretKey,
) -> Result<(SymmetricKeyAlgorithm, Zeroizing<Vec<u8>>), String> {
    let password = Password::empty();
    let mut last_error = "no encrypted session key is addressed to this OpenPGP key".to_string();
    for pkesk in pkesks {
        if pkesk.version() != PkeskVersion::V3 {
            continue;
        }
        let Ok(values) = pkesk.values() else {
            continue;
        };
        let mut attempts = Vec::new();
        if pkesk.match_identity(key.primary_key.public_key()) {
            attempts.push(key.decrypt_session_key(&password, values, EskType::V3_4));
        }
        for subkey in &key.secret_subkeys {
            if pkesk.match_identity(&subkey.public_key()) {
                attempts.push(subkey.decrypt_session_key(&password, values, EskType::V3_4));
            }
        }
        for attempt in attempts {
            match &attempt {
                Ok(Ok(
                    pgp::composed::PlainSessionKey::V3_4 { sym_alg, key }
                    | pgp::composed::PlainSessionKey::Unknown { sym_alg, key },
                )) => {
                    return Ok((*sym_alg, Zeroizing::new(key.clone())));
                }
                Ok(Ok(_)) => last_error = "unexpected session key version".to_string(),
                Ok(Err(err)) => last_error = format!("failed to decrypt the session key: {err}"),
                Err(err) => last_error = format!("failed to unlock the OpenPGP key: {err}"),
            }
        }
    }
    Err(last_error)
}

/// The session-key packets and the encrypted body of a message; refuses unprotected
/// (SED) data.
fn encrypted_parts(
    packets: &[RawPacket],
) -> Result<(Vec<PublicKeyEncryptedSessionKey>, &[u8]), String> {
    let mut pkesks = Vec::new();
    let mut encrypted = None;
    for packet in packets {
        match packet.tag {
            TAG_PKESK => pkesks.push(parse_pkesk(&packet.body)?),
            TAG_SEIPD if encrypted.is_none() => encrypted = Some(&packet.body[..]),
            TAG_SED => {
                return Err(
                    "the PGP message has no integrity protection (SED packet); refusing to decrypt"
                        .to_string(),
                )
            }
            _ => {}
        }
    }
    let body = encrypted.ok_or("the PGP message holds no encrypted data packet")?;
    Ok((pkesks, body))
}

/// Decrypts a binary OpenPGP message the way GnuPG 1.x framed it. Every partial-length
/// packet is re-framed, the encrypted packet is decrypted and its MDC verified here.
pub fn decrypt_legacy_message(
    binary: &[u8],
    key: &SignedSecretKey,
) -> Result<Zeroizing<Vec<u8>>, String> {
    let packets = split_packets(binary).map_err(|err| err.to_string())?;
    let (pkesks, body) = encrypted_parts(&packets)?;
    let (algorithm, session_key) = session_key(&pkesks, key)?;
    let plaintext = decrypt_seipd_v1(algorithm, &session_key, body)?;
    let inner = Zeroizing::new(
        reframe_packets(&plaintext)
            .map_err(|err| format!("in the decrypted PGP message: {err}"))?,
    );
    let message = Message::from_bytes(&inner[..])
        .map_err(|err| format!("failed to parse the decrypted PGP message: {err}"))?;
    if message.is_encrypted() {
        return Err("the decrypted PGP message is encrypted again".to_string());
    }
    read_plain_message(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TAG_LITERAL: u8 = 11;

    /// A literal data packet (binary, no name, date 0) framed in 1-, 2- and 4-byte
    /// partial chunks then a definite-length last chunk, as GnuPG 1.x did.
    fn literal_in_small_chunks(data: &[u8]) -> Vec<u8> {
        let mut body = vec![b'b', 0, 0, 0, 0, 0];
        body.extend_from_slice(data);
        let mut out = vec![0xC0 | TAG_LITERAL];
        let mut rest = &body[..];
        for power in [0u8, 1, 2] {
            let size = 1usize << power;
            if rest.len() <= size {
                break;
            }
            out.push(0xE0 | power);
            out.extend_from_slice(&rest[..size]);
            rest = &rest[size..];
        }
        out.push(u8::try_from(rest.len()).unwrap());
        out.extend_from_slice(rest);
        out
    }

    #[test]
    fn joins_partial_chunks_of_any_size() {
        let stream = literal_in_small_chunks(b"secret data key bytes");
        let packets = split_packets(&stream).unwrap();
        assert_eq!(packets.len(), 1);
        assert_eq!(packets[0].tag, 11);
        assert_eq!(&packets[0].body[6..], b"secret data key bytes");
    }

    #[test]
    fn reframed_stream_has_definite_lengths_and_rpgp_reads_it() {
        let mut stream = literal_in_small_chunks(b"0123456789abcdef");
        // A second, old-format packet with a one-byte length (a marker packet, tag 10).
        stream.extend_from_slice(&[0x80 | (10 << 2), 3, b'P', b'G', b'P']);
        let reframed = reframe_packets(&stream).unwrap();
        assert_eq!(reframed[0], 0xC0 | TAG_LITERAL);
        assert_eq!(reframed[1], 255);
        assert_eq!(&reframed[2..6], &22u32.to_be_bytes());
        let again = split_packets(&reframed).unwrap();
        assert_eq!(again, split_packets(&stream).unwrap());
        assert_eq!(again[1].tag, 10);

        let literal_only = reframe_packets(&literal_in_small_chunks(b"hello")).unwrap();
        let mut message = Message::from_bytes(&literal_only[..]).unwrap();
        assert_eq!(message.as_data_vec().unwrap(), b"hello");
    }

    #[test]
    fn old_format_lengths_including_indeterminate() {
        // Two-byte length, then four-byte length, then indeterminate to the end.
        let mut stream = vec![0x80 | (11 << 2) | 1, 0, 2, b'a', b'b'];
        stream.extend_from_slice(&[0x80 | (11 << 2) | 2, 0, 0, 0, 1, b'c']);
        stream.extend_from_slice(&[0x80 | (8 << 2) | 3, 1, 2, 3]);
        let packets = split_packets(&stream).unwrap();
        let bodies: Vec<&[u8]> = packets.iter().map(|p| &p.body[..]).collect();
        assert_eq!(bodies, [&b"ab"[..], b"c", &[1, 2, 3]]);
        assert_eq!(packets[2].tag, 8);
    }

    #[test]
    fn truncated_streams_are_clear_errors() {
        let stream = literal_in_small_chunks(b"some data that is long enough");
        for cut in 1..stream.len() {
            let err = split_packets(&stream[..cut]).unwrap_err();
            assert!(
                err.to_string()
                    .contains("malformed OpenPGP packet stream at byte"),
                "cut at {cut}: {err}"
            );
            assert!(err.offset <= cut);
        }
        // Ends right after a partial chunk.
        let err = split_packets(&[0xC0 | TAG_LITERAL, 0xE0, b'x']).unwrap_err();
        assert_eq!(err.problem, "the stream ends after a partial-body chunk");
        // Five-byte length claiming more than there is.
        let err = split_packets(&[0xC0 | TAG_LITERAL, 255, 0xff, 0xff, 0xff, 0xff, 1]).unwrap_err();
        assert_eq!(err.offset, 6);
        assert_eq!(err.problem, "the stream ends inside a packet");
    }

    #[test]
    fn garbage_is_rejected_without_panicking() {
        let err = split_packets(b"not a packet").unwrap_err();
        assert_eq!(err.offset, 0);
        assert!(err.problem.contains("not a packet header"));
        let err = split_packets(&[0xC0]).unwrap_err();
        assert_eq!(err.offset, 1);
        assert!(split_packets(&[0x80, 0]).is_err(), "tag 0 is reserved");
        assert!(reframe_packets(&[0xFF, 0xFF, 0xFF]).is_err());
        assert_eq!(split_packets(&[]).unwrap(), Vec::new());
    }

    fn seipd_body(algorithm: SymmetricKeyAlgorithm, key: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let mut body = vec![1];
        body.extend(
            algorithm
                .encrypt_protected(rand::thread_rng(), key, plaintext)
                .unwrap(),
        );
        body
    }

    #[test]
    fn seipd_round_trip_with_small_inner_chunks() {
        let algorithm = SymmetricKeyAlgorithm::AES128;
        let key = [7u8; 16];
        let inner = literal_in_small_chunks(b"the data key");
        let body = seipd_body(algorithm, &key, &inner);
        let plaintext = decrypt_seipd_v1(algorithm, &key, &body).unwrap();
        assert_eq!(&plaintext[..], &inner[..]);
        let reframed = reframe_packets(&plaintext).unwrap();
        let message = Message::from_bytes(&reframed[..]).unwrap();
        assert_eq!(&read_plain_message(message).unwrap()[..], b"the data key");
    }

    #[test]
    fn seipd_with_a_flipped_bit_fails_the_mdc() {
        let algorithm = SymmetricKeyAlgorithm::AES256;
        let key = [9u8; 32];
        let inner = literal_in_small_chunks(b"the data key");
        let body = seipd_body(algorithm, &key, &inner);
        for index in [20, body.len() / 2, body.len() - 1] {
            let mut tampered = body.clone();
            tampered[index] ^= 0x01;
            let err = decrypt_seipd_v1(algorithm, &key, &tampered).unwrap_err();
            assert!(err.contains("integrity check"), "{err}");
        }
        let err = decrypt_seipd_v1(algorithm, &[8u8; 32], &body).unwrap_err();
        assert!(err.contains("integrity check"), "{err}");
    }

    #[test]
    fn seipd_bad_shapes_are_errors() {
        let algorithm = SymmetricKeyAlgorithm::AES128;
        let key = [7u8; 16];
        assert!(decrypt_seipd_v1(algorithm, &key, &[]).is_err());
        assert!(decrypt_seipd_v1(algorithm, &key, &[2, 0, 0]).is_err());
        assert!(decrypt_seipd_v1(algorithm, &key, &[1; 30]).is_err());
        assert!(decrypt_seipd_v1(algorithm, &[1; 5], &[1; 80]).is_err());
    }

    #[test]
    fn sed_packets_are_refused_and_seipd_is_required() {
        let mut stream = Vec::new();
        write_packet(&mut stream, TAG_SED, &[0; 40]).unwrap();
        let err = encrypted_parts(&split_packets(&stream).unwrap()).unwrap_err();
        assert!(err.contains("no integrity protection"), "{err}");
        let literal = literal_in_small_chunks(b"plain");
        let err = encrypted_parts(&split_packets(&literal).unwrap()).unwrap_err();
        assert!(err.contains("no encrypted data packet"), "{err}");
    }
}
