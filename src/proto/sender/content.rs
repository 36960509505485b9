//! A file's bytes as the sender holds them: only the part that may still be sent, so a file
//! of any size streams from disk in bounded memory.
//!
//! The caller gives the bytes in order, in segments that start on a chunk boundary, so every
//! chunk lies within one segment. Segments go once every chunk in them is acknowledged and
//! outside the tail that repair symbols are made from.

use std::collections::VecDeque;

use bytes::Bytes;
use thiserror::Error;

/// Why bytes given to a file were not taken.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ContentError {
    /// The bytes would run past the size in the file's offer.
    #[error("more bytes than the offer's {size}")]
    TooLong {
        /// The offered size.
        size: u64,
    },
    /// A segment other than the last must hold whole chunks, so the next starts on a chunk.
    #[error("a segment of {len} bytes is not a whole number of {chunk_size}-byte chunks")]
    Unaligned {
        /// The segment's length.
        len: usize,
        /// The offer's chunk size.
        chunk_size: u16,
    },
    /// No such file in flight (concluded, or never pushed).
    #[error("no file {0} is being sent")]
    NoSuchFile(u32),
}

#[derive(Debug)]
pub(super) struct Content {
    size: u64,
    chunk_size: u64,
    /// Segments held, with the offset of each one's first byte, oldest first.
    segments: VecDeque<(u64, Bytes)>,
    /// Bytes given so far: the offset the next segment starts at.
    given: u64,
}

impl Content {
    pub fn new(size: u64, chunk_size: u16) -> Self {
        Self {
            size,
            chunk_size: u64::from(chunk_size).max(1),
            segments: VecDeque::new(),
            given: 0,
        }
    }

    /// Takes the next bytes of the file.
    pub fn push(&mut self, bytes: Bytes) -> Result<(), ContentError> {
        let end = self.given + bytes.len() as u64;
        if end > self.size {
            return Err(ContentError::TooLong { size: self.size });
        }
        if end < self.size && !(bytes.len() as u64).is_multiple_of(self.chunk_size) {
            return Err(ContentError::Unaligned {
                len: bytes.len(),
                chunk_size: self.chunk_size as u16,
            });
        }
        if !bytes.is_empty() {
            self.segments.push_back((self.given, bytes));
        }
        self.given = end;
        Ok(())
    }

    /// Every byte of the file has been given.
    pub fn is_complete(&self) -> bool {
        self.given == self.size
    }

    /// Bytes given so far.
    pub fn given(&self) -> u64 {
        self.given
    }

    /// Bytes held now (given and not yet released).
    pub fn held(&self) -> u64 {
        self.segments
            .front()
            .map_or(0, |(from, _)| self.given - from)
    }

    /// Whether chunk `chunk` has been given (it may since have been released).
    pub fn has(&self, chunk: u32) -> bool {
        let from = u64::from(chunk) * self.chunk_size;
        from < self.size && (from + self.chunk_size).min(self.size) <= self.given
    }

    /// The bytes of chunk `chunk`, while they are held.
    pub fn chunk(&self, chunk: u32) -> Option<&[u8]> {
        let from = u64::from(chunk) * self.chunk_size;
        let to = (from + self.chunk_size).min(self.size);
        let i = self.segments.partition_point(|(start, _)| *start <= from);
        let (start, bytes) = self.segments.get(i.checked_sub(1)?)?;
        let (a, b) = ((from - start) as usize, (to - start) as usize);
        bytes.get(a..b)
    }

    /// Lets go of every segment wholly below chunk `chunk`.
    pub fn release_below(&mut self, chunk: u32) {
        let below = u64::from(chunk) * self.chunk_size;
        while let Some((start, bytes)) = self.segments.front() {
            if start + bytes.len() as u64 > below {
                break;
            }
            self.segments.pop_front();
        }
    }

    /// Lets go of everything (the file concluded).
    pub fn clear(&mut self) {
        self.segments.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(from: u8, len: usize) -> Bytes {
        Bytes::from(
            (0..len)
                .map(|i| from.wrapping_add(i as u8))
                .collect::<Vec<u8>>(),
        )
    }

    #[test]
    fn chunks_are_found_across_segments_and_released_in_order() {
        // 10 chunks of 4 bytes and a last one of 2.
        let mut c = Content::new(42, 4);
        assert!(!c.has(0));
        c.push(bytes(0, 8)).unwrap();
        c.push(bytes(8, 12)).unwrap();
        assert!(c.has(4) && !c.has(5));
        assert_eq!(c.chunk(0), Some(&[0, 1, 2, 3][..]));
        assert_eq!(c.chunk(2), Some(&[8, 9, 10, 11][..]));
        assert_eq!(c.chunk(4), Some(&[16, 17, 18, 19][..]));
        assert_eq!(c.chunk(5), None);
        c.push(bytes(20, 22)).unwrap();
        assert!(c.is_complete() && c.has(10) && !c.has(11));
        assert_eq!(c.chunk(10), Some(&[40, 41][..]));
        assert_eq!(c.held(), 42);
        // Chunk 2 is the first of the second segment: the first goes, the second stays.
        c.release_below(3);
        assert_eq!(c.chunk(1), None);
        assert_eq!(c.chunk(2), Some(&[8, 9, 10, 11][..]));
        assert_eq!(c.held(), 34);
        c.release_below(5);
        assert_eq!(c.chunk(4), None);
        assert_eq!(c.held(), 22);
        c.clear();
        assert_eq!(c.held(), 0);
        assert_eq!(c.given(), 42);
    }

    #[test]
    fn bytes_past_the_size_or_off_a_chunk_boundary_are_refused() {
        let mut c = Content::new(10, 4);
        assert_eq!(
            c.push(bytes(0, 5)),
            Err(ContentError::Unaligned {
                len: 5,
                chunk_size: 4
            })
        );
        assert_eq!(
            c.push(bytes(0, 11)),
            Err(ContentError::TooLong { size: 10 })
        );
        c.push(bytes(0, 8)).unwrap();
        // The last segment may end mid-chunk, where the file does.
        c.push(bytes(8, 2)).unwrap();
        assert_eq!(
            c.push(bytes(10, 1)),
            Err(ContentError::TooLong { size: 10 })
        );
        assert_eq!(c.chunk(2), Some(&[8, 9][..]));
    }

    #[test]
    fn an_empty_file_is_complete_at_once() {
        let mut c = Content::new(0, 4);
        c.push(Bytes::new()).unwrap();
        assert!(c.is_complete());
        assert!(!c.has(0));
    }
}
