//! InfLLM's block memory store: each evicted block's keys and values, per layer, kept in RAM up
//! to a size limit and beyond it in an anonymous temporary file, so a long input costs disk
//! rather than RAM (the repo offloads blocks from GPU to CPU memory for the same reason).
//!
//! A record is one block of one layer, `[k of KV head 0, …, k of head n−1, v of head 0, …]`,
//! each `block × head_dim` f32 values. Records round-trip bit-exactly, so where a block lives
//! never changes a result. The file is unlinked at creation (`tempfile`): nothing is left
//! behind, even after a crash; `TMPDIR` chooses its directory.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};

/// Where one record lives.
#[derive(Debug)]
enum Record {
    Ram(Box<[f32]>),
    /// Byte offset in the spill file.
    Disk(u64),
}

/// Block records of every layer, RAM first, spilled to disk past `ram_limit` bytes.
#[derive(Debug)]
pub(crate) struct BlockMemory {
    /// Most bytes of records kept in RAM; `None` keeps everything in RAM.
    ram_limit: Option<usize>,
    /// Records per layer, in block order.
    layers: Vec<Vec<Record>>,
    ram_bytes: usize,
    file: Option<File>,
    file_len: u64,
    /// Offsets of removed records, reused by the next writes.
    free: Vec<u64>,
    /// f32 values per record (fixed by the first one).
    record_len: usize,
}

impl BlockMemory {
    pub(crate) fn new(ram_limit: Option<usize>) -> BlockMemory {
        BlockMemory {
            ram_limit,
            layers: Vec::new(),
            ram_bytes: 0,
            file: None,
            file_len: 0,
            free: Vec::new(),
            record_len: 0,
        }
    }

    /// Blocks stored for `layer`.
    #[cfg(test)]
    fn len(&self, layer: usize) -> usize {
        self.layers.get(layer).map_or(0, Vec::len)
    }

    /// Bytes of records held in RAM.
    pub(crate) fn ram_bytes(&self) -> usize {
        self.ram_bytes
    }

    /// Bytes of records held in the spill file.
    pub(crate) fn disk_bytes(&self) -> usize {
        self.layers
            .iter()
            .flatten()
            .filter(|r| matches!(r, Record::Disk(_)))
            .count()
            * self.record_bytes()
    }

    fn record_bytes(&self) -> usize {
        self.record_len * std::mem::size_of::<f32>()
    }

    /// Appends a block record to `layer`.
    pub(crate) fn push(&mut self, layer: usize, record: Vec<f32>) -> io::Result<()> {
        if self.record_len == 0 {
            self.record_len = record.len();
        }
        if record.len() != self.record_len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "block record of {} values, expected {}",
                    record.len(),
                    self.record_len
                ),
            ));
        }
        if self.layers.len() <= layer {
            self.layers.resize_with(layer + 1, Vec::new);
        }
        let bytes = self.record_bytes();
        let spill = self.file.is_some()
            || self
                .ram_limit
                .is_some_and(|limit| self.ram_bytes + bytes > limit);
        if !spill {
            self.ram_bytes += bytes;
            self.layers[layer].push(Record::Ram(record.into_boxed_slice()));
            return Ok(());
        }
        if self.file.is_none() {
            self.spill_all()?;
        }
        let at = self.write(&record)?;
        self.layers[layer].push(Record::Disk(at));
        Ok(())
    }

    /// Moves every RAM record to a new spill file; later records go straight to it.
    fn spill_all(&mut self) -> io::Result<()> {
        self.file = Some(tempfile::tempfile()?);
        let mut layers = std::mem::take(&mut self.layers);
        let moved: io::Result<()> = layers.iter_mut().flatten().try_for_each(|r| {
            if let Record::Ram(values) = r {
                *r = Record::Disk(self.write(values)?);
            }
            Ok(())
        });
        self.layers = layers;
        moved?;
        self.ram_bytes = 0;
        Ok(())
    }

    /// Writes one record to the file, at a freed offset or at the end; returns its offset.
    fn write(&mut self, values: &[f32]) -> io::Result<u64> {
        let at = self.free.pop().unwrap_or(self.file_len);
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let file = self.file.as_mut().ok_or_else(no_file)?;
        file.seek(SeekFrom::Start(at))?;
        file.write_all(&bytes)?;
        self.file_len = self.file_len.max(at + bytes.len() as u64);
        Ok(at)
    }

    /// Reads block `block` of `layer` into `out` (resized to one record).
    pub(crate) fn read(
        &mut self,
        layer: usize,
        block: usize,
        out: &mut Vec<f32>,
    ) -> io::Result<()> {
        let n = self.record_len;
        let record = self
            .layers
            .get(layer)
            .and_then(|l| l.get(block))
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("no block {block} in layer {layer}"),
                )
            })?;
        out.clear();
        match record {
            Record::Ram(values) => out.extend_from_slice(values),
            Record::Disk(at) => {
                let mut bytes = vec![0u8; n * 4];
                let file = self.file.as_mut().ok_or_else(no_file)?;
                file.seek(SeekFrom::Start(*at))?;
                file.read_exact(&mut bytes)?;
                out.extend(
                    bytes
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                );
            }
        }
        Ok(())
    }

    /// Removes block `block` from every layer (later blocks move down by one).
    pub(crate) fn remove_block(&mut self, block: usize) {
        let bytes = self.record_bytes();
        for layer in &mut self.layers {
            if block >= layer.len() {
                continue;
            }
            match layer.remove(block) {
                Record::Ram(_) => self.ram_bytes -= bytes,
                Record::Disk(at) => self.free.push(at),
            }
        }
    }
}

fn no_file() -> io::Error {
    io::Error::other("block memory spill file missing")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seed: usize) -> Vec<f32> {
        (0..24)
            .map(|i| (seed * 100 + i) as f32 * 0.37 - 1.0)
            .collect()
    }

    #[test]
    fn records_round_trip_exactly_through_ram_and_disk() {
        // Room for two records in RAM; the third spills all of them.
        let mut m = BlockMemory::new(Some(2 * 24 * 4));
        let mut out = Vec::new();
        m.push(0, record(0)).unwrap();
        m.push(1, record(1)).unwrap();
        assert_eq!((m.ram_bytes(), m.disk_bytes()), (192, 0));
        m.push(0, record(2)).unwrap();
        assert_eq!((m.ram_bytes(), m.disk_bytes()), (0, 288));
        m.push(1, record(3)).unwrap();
        for (layer, block, seed) in [(0, 0, 0), (1, 0, 1), (0, 1, 2), (1, 1, 3)] {
            m.read(layer, block, &mut out).unwrap();
            assert_eq!(out, record(seed), "layer {layer} block {block}");
        }
        // Removing block 0 frees its offsets; the next records reuse them.
        m.remove_block(0);
        assert_eq!((m.len(0), m.len(1)), (1, 1));
        m.push(0, record(4)).unwrap();
        m.push(1, record(5)).unwrap();
        assert_eq!(m.file_len, 4 * 96, "freed offsets reused, file not grown");
        for (layer, block, seed) in [(0, 0, 2), (1, 0, 3), (0, 1, 4), (1, 1, 5)] {
            m.read(layer, block, &mut out).unwrap();
            assert_eq!(out, record(seed), "layer {layer} block {block}");
        }
        assert!(m.read(0, 2, &mut out).is_err());
        assert!(m.push(0, vec![0.0; 3]).is_err(), "wrong record size");
    }

    #[test]
    fn without_a_limit_everything_stays_in_ram() {
        let mut m = BlockMemory::new(None);
        for i in 0..10 {
            m.push(i % 2, record(i)).unwrap();
        }
        assert_eq!((m.ram_bytes(), m.disk_bytes()), (10 * 96, 0));
        assert!(m.file.is_none());
        m.remove_block(1);
        assert_eq!(m.ram_bytes(), 8 * 96);
    }
}
