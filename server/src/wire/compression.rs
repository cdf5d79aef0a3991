//! `OP_COMPRESSED`: `originalOpcode i32 | uncompressedSize i32 | compressorId u8 | bytes`.
//! Compressors: noop (0), snappy (1, raw block format), zlib (2), zstd (3).

use std::io::{Read, Write};

use super::{read_i32, FrameError, MAX_MESSAGE_SIZE};

/// A compressor negotiated in `hello`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compressor {
    /// Id 0: the bytes as they are.
    Noop,
    /// Id 1: snappy raw blocks.
    Snappy,
    /// Id 2: zlib.
    Zlib,
    /// Id 3: zstd.
    Zstd,
}

impl Compressor {
    /// Compressors this server offers, in its order of preference.
    pub const SUPPORTED: [Compressor; 3] = [Compressor::Zstd, Compressor::Snappy, Compressor::Zlib];

    /// The wire id.
    pub fn id(self) -> u8 {
        match self {
            Compressor::Noop => 0,
            Compressor::Snappy => 1,
            Compressor::Zlib => 2,
            Compressor::Zstd => 3,
        }
    }

    /// The name used in `hello`'s `compression` list.
    pub fn name(self) -> &'static str {
        match self {
            Compressor::Noop => "noop",
            Compressor::Snappy => "snappy",
            Compressor::Zlib => "zlib",
            Compressor::Zstd => "zstd",
        }
    }

    /// The compressor with this `hello` name.
    pub fn from_name(name: &str) -> Option<Compressor> {
        Compressor::SUPPORTED.into_iter().find(|c| c.name() == name)
    }

    fn from_id(id: u8) -> Option<Compressor> {
        match id {
            0 => Some(Compressor::Noop),
            1 => Some(Compressor::Snappy),
            2 => Some(Compressor::Zlib),
            3 => Some(Compressor::Zstd),
            _ => None,
        }
    }

    /// Compresses `data`.
    pub fn compress(self, data: &[u8]) -> std::io::Result<Vec<u8>> {
        match self {
            Compressor::Noop => Ok(data.to_vec()),
            Compressor::Snappy => snap::raw::Encoder::new()
                .compress_vec(data)
                .map_err(std::io::Error::other),
            Compressor::Zlib => {
                let mut e =
                    flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(data)?;
                e.finish()
            }
            Compressor::Zstd => zstd::bulk::compress(data, 1),
        }
    }

    /// Decompresses into exactly `size` bytes; anything else is an error.
    fn decompress(self, data: &[u8], size: usize) -> Result<Vec<u8>, String> {
        let out = match self {
            Compressor::Noop => data.to_vec(),
            Compressor::Snappy => {
                let n = snap::raw::decompress_len(data).map_err(|e| e.to_string())?;
                if n != size {
                    return Err(format!("snappy block holds {n} bytes, header says {size}"));
                }
                snap::raw::Decoder::new()
                    .decompress_vec(data)
                    .map_err(|e| e.to_string())?
            }
            Compressor::Zlib => {
                let mut out = Vec::with_capacity(size);
                flate2::read::ZlibDecoder::new(data)
                    .take(size as u64 + 1)
                    .read_to_end(&mut out)
                    .map_err(|e| e.to_string())?;
                out
            }
            Compressor::Zstd => zstd::bulk::decompress(data, size).map_err(|e| e.to_string())?,
        };
        if out.len() != size {
            return Err(format!(
                "decompressed {} bytes, header says {size}",
                out.len()
            ));
        }
        Ok(out)
    }
}

/// Unwraps an `OP_COMPRESSED` body: the original opcode, the decompressed
/// message body and the compressor.
pub fn unwrap(body: &[u8]) -> Result<(i32, Vec<u8>, Compressor), FrameError> {
    let op = read_i32(body, 0).ok_or(FrameError::Truncated("OP_COMPRESSED header"))?;
    let size = read_i32(body, 4).ok_or(FrameError::Truncated("OP_COMPRESSED header"))?;
    let id = *body
        .get(8)
        .ok_or(FrameError::Truncated("OP_COMPRESSED header"))?;
    if size < 0 || size as usize > MAX_MESSAGE_SIZE {
        return Err(FrameError::TooLarge(size.max(0) as usize));
    }
    if op == super::OP_COMPRESSED {
        return Err(FrameError::Malformed(
            "OP_COMPRESSED inside OP_COMPRESSED".into(),
        ));
    }
    let c = Compressor::from_id(id).ok_or_else(|| {
        FrameError::Malformed(format!(
            "unknown compressor id {id} (0 noop, 1 snappy, 2 zlib, 3 zstd)"
        ))
    })?;
    let payload = c
        .decompress(&body[9..], size as usize)
        .map_err(|e| FrameError::Malformed(format!("{} decompression failed: {e}", c.name())))?;
    Ok((op, payload, c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_compressor_and_rejects_lies() {
        let data: Vec<u8> = (0..10_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        for c in [
            Compressor::Noop,
            Compressor::Snappy,
            Compressor::Zlib,
            Compressor::Zstd,
        ] {
            let packed = c.compress(&data).unwrap();
            let mut body = super::super::OP_MSG.to_le_bytes().to_vec();
            body.extend((data.len() as i32).to_le_bytes());
            body.push(c.id());
            body.extend(&packed);
            let (op, out, got) = unwrap(&body).unwrap();
            assert_eq!((op, got), (super::super::OP_MSG, c));
            assert_eq!(out, data);
            // A header that lies about the size is refused.
            body[4..8].copy_from_slice(&((data.len() as i32) - 1).to_le_bytes());
            assert!(unwrap(&body).is_err(), "{c:?}");
        }
    }
}
