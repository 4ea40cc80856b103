//! Reading gzip a member at a time. Our backups' gzip is a series of members of at most
//! `pgzip::BLOCK` bytes of input each (`pgzip::ParGzEncoder`); libdeflate decompresses a
//! whole member in one call at about twice the speed of a streaming inflater (the 256 MB
//! restore spent 1.0–1.3 CPU-s in gzip, on two cores shared with the target mongod). Any
//! other gzip — mongodump's one long member, a member bigger than a block, a damaged or
//! truncated one, trailing bytes — is read from that point on by flate2's streaming
//! `MultiGzDecoder`, exactly as before, so what it accepts and the errors it reports are
//! unchanged. libdeflate checks each member's CRC-32 and length as flate2 does.
use std::io::{self, Chain, Cursor, Read};

use super::pgzip::BLOCK;

/// Input held to find a whole member: a block stored uncompressed grows by 5 bytes per
/// 64 KiB and the gzip header and trailer, far less than this margin.
const WINDOW: usize = BLOCK + (64 << 10);

type Slow<R> = flate2::read::MultiGzDecoder<Chain<Cursor<Vec<u8>>, R>>;

pub struct MemberGzDecoder<R: Read> {
    state: State<R>,
}

enum State<R: Read> {
    Members(Members<R>),
    Streaming(Box<Slow<R>>),
    /// Only while switching.
    Switching,
}

struct Members<R> {
    inner: R,
    input: Vec<u8>,
    /// Where the next member starts in `input`.
    start: usize,
    eof: bool,
    out: Vec<u8>,
    out_pos: usize,
    /// Members decoded so far: an empty input is flate2's to judge, as before.
    decoded: u64,
    inflater: Inflater,
}

impl<R: Read> MemberGzDecoder<R> {
    pub fn new(inner: R) -> MemberGzDecoder<R> {
        MemberGzDecoder {
            state: State::Members(Members {
                inner,
                input: Vec::new(),
                start: 0,
                eof: false,
                out: Vec::new(),
                out_pos: 0,
                decoded: 0,
                inflater: Inflater::new(),
            }),
        }
    }

    /// From here on, flate2 reads what is left: the unread part of `input`, then `inner`.
    fn stream_the_rest(&mut self) {
        if let State::Members(m) = std::mem::replace(&mut self.state, State::Switching) {
            let rest = m.input[m.start..].to_vec();
            let chained = Cursor::new(rest).chain(m.inner);
            self.state = State::Streaming(Box::new(flate2::read::MultiGzDecoder::new(chained)));
        }
    }
}

impl<R: Read> Read for MemberGzDecoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let m = match &mut self.state {
                State::Streaming(d) => return d.read(buf),
                State::Switching => unreachable!("switching is not left half done"),
                State::Members(m) => m,
            };
            if m.out_pos < m.out.len() {
                let n = buf.len().min(m.out.len() - m.out_pos);
                buf[..n].copy_from_slice(&m.out[m.out_pos..m.out_pos + n]);
                m.out_pos += n;
                return Ok(n);
            }
            m.fill()?;
            if m.start == m.input.len() && m.eof && m.decoded > 0 {
                // Ended exactly after a member, as a multi-member stream may.
                return Ok(0);
            }
            m.out.clear();
            m.out_pos = 0;
            if m.out.capacity() < BLOCK {
                m.out.reserve_exact(BLOCK);
            }
            match m.inflater.member(&m.input[m.start..], &mut m.out) {
                Some(used) => {
                    m.start += used;
                    m.decoded += 1;
                }
                None => self.stream_the_rest(),
            }
        }
    }
}

impl<R: Read> Members<R> {
    /// Hold at least a window of input (or all that is left).
    fn fill(&mut self) -> io::Result<()> {
        if self.input.len() - self.start >= WINDOW || self.eof {
            return Ok(());
        }
        self.input.drain(..self.start);
        self.start = 0;
        if self.input.capacity() < WINDOW {
            self.input.reserve_exact(WINDOW - self.input.len());
        }
        // Zeroed once, then filled by as many reads as it takes; cut back to what came.
        let mut have = self.input.len();
        self.input.resize(WINDOW, 0);
        let result = loop {
            if have == WINDOW {
                break Ok(());
            }
            match self.inner.read(&mut self.input[have..]) {
                Ok(0) => {
                    self.eof = true;
                    break Ok(());
                }
                Ok(n) => have += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        self.input.truncate(have);
        result
    }
}

/// libdeflate's decompressor, owned.
struct Inflater(std::ptr::NonNull<libdeflate_sys::libdeflate_decompressor>);

// SAFETY: the decompressor is plain heap state with no thread affinity; it is used
// through `&mut self` only.
unsafe impl Send for Inflater {}

impl Inflater {
    fn new() -> Inflater {
        // SAFETY: allocation has no preconditions; null (out of memory) is checked.
        let p = unsafe { libdeflate_sys::libdeflate_alloc_decompressor() };
        Inflater(std::ptr::NonNull::new(p).expect("out of memory allocating a gzip decompressor"))
    }

    /// Decompress the gzip member at the start of `input` into `out` (its spare capacity),
    /// returning the input bytes it took; None when it is not one whole, valid member of
    /// at most `out`'s capacity.
    fn member(&mut self, input: &[u8], out: &mut Vec<u8>) -> Option<usize> {
        if input.is_empty() {
            return None;
        }
        let (mut used, mut wrote) = (0usize, 0usize);
        // SAFETY: `input` is valid for reads of its length; `out`'s spare capacity is
        // valid for writes of its length, and only the `wrote` bytes libdeflate reports
        // as written are made part of `out`.
        let r = unsafe {
            libdeflate_sys::libdeflate_gzip_decompress_ex(
                self.0.as_ptr(),
                input.as_ptr().cast(),
                input.len(),
                out.as_mut_ptr().cast(),
                out.capacity(),
                &mut used,
                &mut wrote,
            )
        };
        if r != libdeflate_sys::libdeflate_result_LIBDEFLATE_SUCCESS {
            return None;
        }
        // SAFETY: libdeflate wrote `wrote` <= capacity bytes from the start of `out`.
        unsafe { out.set_len(wrote) };
        Some(used)
    }
}

impl Drop for Inflater {
    fn drop(&mut self) {
        // SAFETY: allocated by libdeflate_alloc_decompressor, freed once.
        unsafe { libdeflate_sys::libdeflate_free_decompressor(self.0.as_ptr()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn ours(data: &[u8]) -> Vec<u8> {
        let mut e =
            crate::codec::Encoder::new(crate::codec::Compression::Gzip, 7, 2, Vec::new()).unwrap();
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn stock(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn read_all(gz: &[u8], chunk: usize) -> io::Result<Vec<u8>> {
        // A reader that hands out `chunk` bytes at a time, as a network stream may.
        struct Trickle<'a>(&'a [u8], usize);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = buf.len().min(self.1).min(self.0.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut out = Vec::new();
        MemberGzDecoder::new(Trickle(gz, chunk)).read_to_end(&mut out)?;
        Ok(out)
    }

    fn sample(len: usize) -> Vec<u8> {
        // Compressible but not trivial, with an incompressible stretch.
        let mut v: Vec<u8> = (0..len).map(|i| (i % 251) as u8 ^ (i / 7) as u8).collect();
        let mut x = 0x9e3779b97f4a7c15u64;
        for b in v.iter_mut().take(len / 3) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        v
    }

    #[test]
    fn our_members_and_foreign_gzip_read_the_same_as_flate2() {
        for len in [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, 3 * BLOCK + 12_345] {
            let data = sample(len);
            for gz in [ours(&data), stock(&data)] {
                for chunk in [7, 65_536, usize::MAX] {
                    assert_eq!(
                        read_all(&gz, chunk).unwrap(),
                        data,
                        "len {len}, chunk {chunk}"
                    );
                }
            }
        }
        // Our members followed by a foreign one, and the other way round.
        let (a, b) = (sample(2 * BLOCK + 5), sample(BLOCK / 2));
        let mut both = ours(&a);
        both.extend(stock(&b));
        assert_eq!(
            read_all(&both, usize::MAX).unwrap(),
            [a.clone(), b.clone()].concat()
        );
        let mut both = stock(&b);
        both.extend(ours(&a));
        assert_eq!(read_all(&both, usize::MAX).unwrap(), [b, a].concat());
    }

    #[test]
    fn damage_is_reported_as_flate2_reports_it() {
        let data = sample(3 * BLOCK);
        let gz = ours(&data);
        let flate = |gz: &[u8]| {
            let mut out = Vec::new();
            flate2::read::MultiGzDecoder::new(gz)
                .read_to_end(&mut out)
                .map(|_| out)
                .map_err(|e| (e.kind(), e.to_string()))
        };
        let mine = |gz: &[u8]| read_all(gz, usize::MAX).map_err(|e| (e.kind(), e.to_string()));
        // Truncated in the second member; a flipped byte in the second member's data and
        // in the last member's CRC; trailing garbage; an empty input.
        let second = gz.len() / 2;
        let mut flipped = gz.clone();
        flipped[second] ^= 0x55;
        let mut bad_crc = gz.clone();
        let at = gz.len() - 6;
        bad_crc[at] ^= 1;
        let mut trailing = gz.clone();
        trailing.extend_from_slice(b"not gzip");
        for case in [
            &gz[..second],
            &flipped[..],
            &bad_crc[..],
            &trailing[..],
            &[][..],
        ] {
            let (want, got) = (flate(case), mine(case));
            assert!(
                want.is_err() || case.is_empty(),
                "flate2 accepted a damaged input"
            );
            match (&want, &got) {
                (Ok(a), Ok(b)) => assert_eq!(a, b),
                (Err(a), Err(b)) => assert_eq!(a.0, b.0, "{a:?} vs {b:?}"),
                _ => panic!("flate2 {want:?} vs ours {got:?}"),
            }
        }
    }
}
