//! A gzip writer whose bytes depend only on its input.
//!
//! flate2 picks its deflate backend by Cargo feature, and features are unified across the
//! whole build: linking a crate that enables `zlib-rs` (rpgp does) silently changes every
//! compressed byte, and so every artifact digest. This writer drives `miniz_oxide` directly
//! at level 6 with the header Go's gzip writes (no name, mtime 0, OS 255), so the same tree
//! gives the same digest whatever else is linked.

use std::io::{self, Write};

use miniz_oxide::deflate::core::{
    compress, create_comp_flags_from_zip_params, CompressorOxide, TDEFLFlush, TDEFLStatus,
};

/// Compression level (zlib's default).
const LEVEL: i32 = 6;
/// The 10-byte gzip header: magic, deflate, no flags, mtime 0, no extra flags, OS unknown.
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];

/// Gzip-compresses everything written to it into `inner`; call [`GzipWriter::finish`].
pub struct GzipWriter<W: Write> {
    inner: W,
    compressor: Box<CompressorOxide>,
    crc: crc32fast::Hasher,
    size: u32,
    buffer: Vec<u8>,
    header_written: bool,
}

impl<W: Write> GzipWriter<W> {
    /// Starts a gzip stream into `inner`.
    pub fn new(inner: W) -> Self {
        // Raw deflate (window bits < 0): gzip wraps it itself.
        let flags = create_comp_flags_from_zip_params(LEVEL, -15, 0);
        Self {
            inner,
            compressor: Box::new(CompressorOxide::new(flags)),
            crc: crc32fast::Hasher::new(),
            size: 0,
            buffer: vec![0; 64 * 1024],
            header_written: false,
        }
    }

    fn write_header(&mut self) -> io::Result<()> {
        if !self.header_written {
            self.inner.write_all(&HEADER)?;
            self.header_written = true;
        }
        Ok(())
    }

    /// Feeds `input` to the compressor until it is consumed (or, when finishing, until the
    /// stream is complete), writing compressed output as it comes.
    fn pump(&mut self, mut input: &[u8], flush: TDEFLFlush) -> io::Result<()> {
        loop {
            let (status, consumed, produced) =
                compress(&mut self.compressor, input, &mut self.buffer, flush);
            self.inner.write_all(&self.buffer[..produced])?;
            input = &input[consumed..];
            match status {
                TDEFLStatus::Done => return Ok(()),
                TDEFLStatus::Okay if input.is_empty() && produced < self.buffer.len() => {
                    if flush == TDEFLFlush::None {
                        return Ok(());
                    }
                }
                TDEFLStatus::Okay => {}
                TDEFLStatus::BadParam | TDEFLStatus::PutBufFailed => {
                    return Err(io::Error::other("deflate failed"));
                }
            }
        }
    }

    /// Completes the stream (deflate end, CRC-32 and size trailer) and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.write_header()?;
        self.pump(&[], TDEFLFlush::Finish)?;
        self.inner
            .write_all(&self.crc.clone().finalize().to_le_bytes())?;
        self.inner.write_all(&self.size.to_le_bytes())?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for GzipWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.write_header()?;
        self.crc.update(data);
        // ISIZE is the input length modulo 2^32.
        self.size = self.size.wrapping_add(data.len() as u32);
        self.pump(data, TDEFLFlush::None)?;
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn round_trips_through_a_standard_decoder() {
        let text: Vec<u8> = (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let mut gz = GzipWriter::new(Vec::new());
        for chunk in text.chunks(7_777) {
            gz.write_all(chunk).unwrap();
        }
        let bytes = gz.finish().unwrap();
        assert_eq!(&bytes[..10], &HEADER);
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, text);
    }

    #[test]
    fn output_does_not_depend_on_how_input_is_split() {
        let text = b"apiVersion: v1\nkind: ConfigMap\n".repeat(5_000);
        let one = {
            let mut gz = GzipWriter::new(Vec::new());
            gz.write_all(&text).unwrap();
            gz.finish().unwrap()
        };
        let many = {
            let mut gz = GzipWriter::new(Vec::new());
            for chunk in text.chunks(1_000) {
                gz.write_all(chunk).unwrap();
            }
            gz.finish().unwrap()
        };
        assert_eq!(one, many);
        let empty = GzipWriter::new(Vec::new()).finish().unwrap();
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&empty[..])
            .read_to_end(&mut out)
            .unwrap();
        assert!(out.is_empty());
    }
}
