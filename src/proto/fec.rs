//! Forward error correction of a transfer's tail: systematic Reed-Solomon (reed-solomon-simd)
//! over the last chunks of a file. When the sender has sent its last new chunk, it sends a
//! few REPAIR symbols computed over the chunks still in flight; any `len` of the block's
//! chunks and symbols rebuild the rest, so a loss in the final round trip is repaired
//! without waiting a round trip to learn of it. Earlier losses are repaired by
//! retransmission as before: there the wait overlaps with new data and costs no time.

use std::collections::BTreeMap;

use reed_solomon_simd::{ReedSolomonDecoder, ReedSolomonEncoder};

/// Most bytes of chunks one block covers: the receiver keeps that much of a file's tail in
/// memory to decode with.
pub const MAX_BLOCK_BYTES: usize = 1 << 20;
/// Most chunks one block covers, whatever their size.
pub const MAX_BLOCK_CHUNKS: usize = super::wire::MAX_REPAIR_BLOCK as usize;
/// Most repair symbols one block has (a REPAIR numbers them in a byte); a receiver keeps
/// no more.
pub const MAX_REPAIRS: usize = super::wire::MAX_REPAIR_COUNT as usize;
/// Most bytes of repair symbols a receiver keeps per file.
pub const MAX_REPAIR_BYTES: usize = 256 << 10;

/// Which chunks a block covers and how many symbols were made for it: what a REPAIR says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    /// First chunk index.
    pub start: u32,
    /// Chunks in the block.
    pub len: u16,
    /// Repair symbols made for it (the code depends on the count).
    pub repairs: u16,
}

/// Bytes of every symbol of a file with chunks of `chunk_size`: the codec wants an even size.
pub fn shard_bytes(chunk_size: u16) -> usize {
    usize::from(chunk_size).next_multiple_of(2)
}

/// The largest block a file with chunks of `chunk_size` may have.
pub fn max_block_len(chunk_size: u16) -> usize {
    (MAX_BLOCK_BYTES / shard_bytes(chunk_size).max(1)).clamp(1, MAX_BLOCK_CHUNKS)
}

/// The most symbols a receiver keeps for one block of chunks of `chunk_size`.
pub fn max_repairs(chunk_size: u16) -> usize {
    (MAX_REPAIR_BYTES / shard_bytes(chunk_size).max(1)).clamp(1, MAX_REPAIRS)
}

/// Symbols to send for `len` chunks when a fraction `loss` of packets is lost: the expected
/// losses plus two standard deviations plus one, so a block decodes about 98 % of the time.
pub fn repairs_for(len: usize, loss: f64, cap: usize) -> usize {
    let p = loss.clamp(0.0, 0.5);
    let mean = len as f64 * p;
    let sd = (mean * (1.0 - p)).sqrt();
    ((mean + 2.0 * sd).ceil() as usize + 1).clamp(1, cap.min(len.max(1)))
}

fn padded(chunk: &[u8], bytes: usize) -> Vec<u8> {
    let mut v = chunk.to_vec();
    v.resize(bytes, 0);
    v
}

/// The `repairs` symbols of the block of `chunks`, each `bytes` long.
pub fn encode(chunks: &[&[u8]], repairs: usize, bytes: usize) -> Option<Vec<Vec<u8>>> {
    let mut enc = ReedSolomonEncoder::new(chunks.len(), repairs, bytes).ok()?;
    for c in chunks {
        enc.add_original_shard(padded(c, bytes)).ok()?;
    }
    let out = enc.encode().ok()?;
    Some(out.recovery_iter().map(<[u8]>::to_vec).collect())
}

/// A receiver's view of one block: the symbols that came, until it can decode.
#[derive(Debug, Clone)]
pub struct BlockDecoder {
    /// What the block covers.
    pub block: Block,
    symbols: BTreeMap<u16, Vec<u8>>,
}

impl BlockDecoder {
    /// An empty decoder of `block`.
    pub fn new(block: Block) -> Self {
        Self {
            block,
            symbols: BTreeMap::new(),
        }
    }

    /// Keeps symbol `index` (false when it is a copy or beyond what may be kept).
    pub fn add(&mut self, index: u16, symbol: &[u8], keep_at_most: usize) -> bool {
        if index >= self.block.repairs || self.symbols.len() >= keep_at_most {
            return false;
        }
        if self.symbols.contains_key(&index) {
            return false;
        }
        self.symbols.insert(index, symbol.to_vec());
        true
    }

    /// Symbols held.
    pub fn symbols(&self) -> usize {
        self.symbols.len()
    }

    /// Rebuilds the missing chunks from `held` (index within the block, bytes) and the
    /// symbols; `None` when there are too few or they do not fit together.
    pub fn decode<'a>(
        &self,
        held: impl IntoIterator<Item = (usize, &'a [u8])>,
        bytes: usize,
    ) -> Option<BTreeMap<usize, Vec<u8>>> {
        let (len, repairs) = (usize::from(self.block.len), usize::from(self.block.repairs));
        let mut dec = ReedSolomonDecoder::new(len, repairs, bytes).ok()?;
        for (i, c) in held {
            dec.add_original_shard(i, padded(c, bytes)).ok()?;
        }
        for (i, s) in &self.symbols {
            dec.add_recovery_shard(usize::from(*i), s).ok()?;
        }
        let out = dec.decode().ok()?;
        Some(
            out.restored_original_iter()
                .map(|(i, s)| (i, s.to_vec()))
                .collect(),
        )
    }
}

/// A receiver's tail of one file: copies of the chunks it holds near the end, which a block
/// may cover, and the block's symbols, until the block decodes or every chunk is in.
#[derive(Debug, Clone)]
pub struct Tail {
    /// First chunk kept: a block may start no earlier.
    start: u32,
    chunk_count: u32,
    chunk_size: u16,
    chunks: BTreeMap<u32, Vec<u8>>,
    decoder: Option<BlockDecoder>,
}

/// Why a repair symbol was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SymbolError {
    /// Its block does not fit the file, or the symbol does not fit its chunks.
    Invalid,
    /// A copy, another block's, or one more than is kept: dropped, no harm meant.
    Ignored,
}

impl Tail {
    /// The tail of a file of `chunk_count` chunks of `chunk_size`.
    pub fn new(chunk_count: u32, chunk_size: u16) -> Self {
        let span = max_block_len(chunk_size) as u32;
        Self {
            start: chunk_count.saturating_sub(span),
            chunk_count,
            chunk_size,
            chunks: BTreeMap::new(),
            decoder: None,
        }
    }

    /// Keeps a copy of `chunk` when a block may cover it.
    pub fn keep(&mut self, chunk: u32, data: &[u8]) {
        if chunk >= self.start && chunk < self.chunk_count {
            self.chunks.insert(chunk, data.to_vec());
        }
    }

    /// Takes symbol `index` of `block`.
    pub fn add_symbol(
        &mut self,
        block: Block,
        index: u16,
        symbol: &[u8],
    ) -> Result<(), SymbolError> {
        let end = u64::from(block.start) + u64::from(block.len);
        let fits = block.start >= self.start
            && end <= u64::from(self.chunk_count)
            && usize::from(block.len) <= max_block_len(self.chunk_size)
            && usize::from(block.repairs) <= usize::from(u16::MAX / 2)
            && symbol.len() == shard_bytes(self.chunk_size);
        if !fits {
            return Err(SymbolError::Invalid);
        }
        let decoder = self.decoder.get_or_insert_with(|| BlockDecoder::new(block));
        if decoder.block != block || !decoder.add(index, symbol, max_repairs(self.chunk_size)) {
            return Err(SymbolError::Ignored);
        }
        Ok(())
    }

    /// The chunks the block's symbols rebuild, as (chunk, bytes), once enough of the block
    /// and its symbols are in; `held` says which chunks the receiver has. Empty otherwise.
    pub fn rebuild(&mut self, held: impl Fn(u32) -> bool) -> Vec<(u32, Vec<u8>)> {
        let Some(dec) = &self.decoder else {
            return Vec::new();
        };
        let Block { start, len, .. } = dec.block;
        let range = start..start + u32::from(len);
        let have = range.clone().filter(|&c| held(c)).count();
        if have == usize::from(len) {
            self.decoder = None;
            return Vec::new();
        }
        if have + dec.symbols() < usize::from(len) {
            return Vec::new();
        }
        let originals = range
            .filter(|c| held(*c))
            .filter_map(|c| Some(((c - start) as usize, self.chunks.get(&c)?.as_slice())));
        let Some(restored) = dec.decode(originals, shard_bytes(self.chunk_size)) else {
            return Vec::new();
        };
        self.decoder = None;
        restored
            .into_iter()
            .map(|(i, bytes)| (start + i as u32, bytes))
            .filter(|(c, _)| !held(*c))
            .collect()
    }

    /// Bytes held, for the memory bound.
    pub fn bytes(&self) -> usize {
        self.chunks.values().map(Vec::len).sum::<usize>()
            + self
                .decoder
                .as_ref()
                .map_or(0, |d| d.symbols() * shard_bytes(self.chunk_size))
    }

    /// Lets go of everything: the file is complete.
    pub fn clear(&mut self) {
        self.chunks.clear();
        self.decoder = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(n: usize, size: usize) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| (0..size).map(|j| (i * 31 + j * 7) as u8).collect())
            .collect()
    }

    #[test]
    fn any_len_of_chunks_and_symbols_rebuild_the_block() {
        let data = chunks(20, 1166);
        let mut data_refs: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
        // A short last chunk, padded for the code and cut back after.
        data_refs[19] = &data[19][..500];
        let bytes = shard_bytes(1166);
        let symbols = encode(&data_refs, 4, bytes).expect("encodes");
        assert_eq!(symbols.len(), 4);
        let block = Block {
            start: 100,
            len: 20,
            repairs: 4,
        };
        let mut dec = BlockDecoder::new(block);
        for (i, s) in symbols.iter().enumerate().skip(1) {
            assert!(dec.add(i as u16, s, 8));
        }
        assert!(!dec.add(1, &symbols[1], 8), "a copy is not kept twice");
        let lost = [0usize, 7, 19];
        let held = (0..20)
            .filter(|i| !lost.contains(i))
            .map(|i| (i, data_refs[i]));
        let restored = dec
            .decode(held, bytes)
            .expect("three losses, three symbols");
        assert_eq!(restored.keys().copied().collect::<Vec<_>>(), lost);
        assert_eq!(&restored[&0][..], data_refs[0]);
        assert_eq!(&restored[&7][..], data_refs[7]);
        assert_eq!(&restored[&19][..500], data_refs[19]);
        // One loss too many: nothing is made up.
        let held = (0..20)
            .filter(|i| ![0, 1, 7, 19].contains(i))
            .map(|i| (i, data_refs[i]));
        assert!(dec.decode(held, bytes).is_none());
    }

    #[test]
    fn symbols_beyond_the_count_or_the_cap_are_refused() {
        let mut dec = BlockDecoder::new(Block {
            start: 0,
            len: 4,
            repairs: 2,
        });
        assert!(!dec.add(2, &[0; 4], 8), "index past the count");
        assert!(dec.add(0, &[0; 4], 1));
        assert!(!dec.add(1, &[0; 4], 1), "past what may be kept");
        assert_eq!(dec.symbols(), 1);
    }

    #[test]
    fn the_repair_count_follows_the_loss_and_its_spread() {
        assert_eq!(repairs_for(100, 0.0, 128), 1);
        // 100 chunks at 10 %: 10 expected, 2 x 3 spread, plus one.
        assert_eq!(repairs_for(100, 0.10, 128), 17);
        assert_eq!(repairs_for(100, 0.10, 12), 12);
        assert_eq!(
            repairs_for(3, 0.5, 128),
            3,
            "never more symbols than chunks"
        );
    }

    #[test]
    fn blocks_stay_within_their_memory() {
        assert_eq!(max_block_len(1166), (1 << 20) / 1166);
        assert_eq!(max_block_len(100), MAX_BLOCK_CHUNKS);
        assert_eq!(max_block_len(65_000), 16);
        assert_eq!(max_repairs(65_000), 4);
        assert_eq!(shard_bytes(1165), 1166);
    }
}
