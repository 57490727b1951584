//! Attention plans: the key spans a layer attends to, how each span's keys are positioned
//! relative to the queries and which of them each query may see.

use std::ops::Range;
use std::sync::Arc;

/// Which of a span's keys a query row may see, judged on true (absolute) positions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpanMask {
    /// Keys at positions ≤ the query's position.
    Causal,
    /// Causal and closer than `w`: `q_pos - k_pos < w` (Gemma's native sliding window,
    /// the local window of LM-Infinite / InfLLM).
    Window(usize),
    /// Keys at distance ≥ `w` (the complement of `Window(w)`: InfLLM's remainder, LM-Infinite's
    /// sinks once they left the window), so every key is seen through exactly one span.
    OutsideWindow(usize),
    /// Every key in the span (e.g. a shared prefix or retrieved memory).
    All,
}

/// Which KV slots a span covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Slots {
    Range(Range<usize>),
    /// Sorted or not; keys are attended in this order.
    Indices(Arc<[u32]>),
    /// One index list per KV head, all of the same length: per-head selections (Quest /
    /// LServe page lists) inside one span. Key `j` of KV head `h` is slot `lists[h][j]`.
    PerKvHead(Arc<[Vec<u32>]>),
    /// Keys and values that live outside the store (a policy's own memory, e.g. InfLLM's
    /// blocks), so the hot store stays bounded while old context is still attended.
    External(Arc<ExternalKv>),
}

impl Slots {
    pub fn len(&self) -> usize {
        match self {
            Slots::Range(r) => r.len(),
            Slots::Indices(i) => i.len(),
            Slots::PerKvHead(l) => l.first().map_or(0, Vec::len),
            Slots::External(e) => e.pos.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Store slot of key `j` for KV head `h` (`None` for external keys).
    pub(super) fn slot(&self, h: usize, j: usize) -> Option<usize> {
        match self {
            Slots::Range(r) => Some(r.start + j),
            Slots::Indices(i) => Some(i[j] as usize),
            Slots::PerKvHead(l) => Some(l[h][j] as usize),
            Slots::External(_) => None,
        }
    }
}

/// Keys and values held by a policy outside the KV store, attended through
/// [`Slots::External`]. Per KV head, `k[h]` and `v[h]` hold `pos.len() × head_dim` floats.
#[derive(Clone, Debug, Default)]
pub struct ExternalKv {
    /// Un-rotated keys when `pre_rope`, otherwise keys rotated at their `pos`.
    pub k: Vec<Vec<f32>>,
    pub v: Vec<Vec<f32>>,
    /// True position of each key (for masks and `Original` / `Virtual` rotation).
    pub pos: Vec<i64>,
    pub pre_rope: bool,
}

impl ExternalKv {
    /// Rows the attention kernel can read without rotating them for `pos`.
    pub(super) fn direct_for(&self, pos: &KeyPos) -> bool {
        matches!(
            (pos, self.pre_rope),
            (KeyPos::FixedDistance(_), true) | (KeyPos::Original, false)
        )
    }
}

// Bitwise equality, so plans stay comparable in tests (NaN payloads compare by bits).
impl PartialEq for ExternalKv {
    fn eq(&self, other: &Self) -> bool {
        let bits = |a: &Vec<Vec<f32>>, b: &Vec<Vec<f32>>| {
            a.len() == b.len()
                && a.iter().zip(b).all(|(x, y)| {
                    x.len() == y.len() && x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits())
                })
        };
        self.pre_rope == other.pre_rope
            && self.pos == other.pos
            && bits(&self.k, &other.k)
            && bits(&self.v, &other.v)
    }
}

impl Eq for ExternalKv {}

/// How a span's keys are positioned relative to the queries (engine-methods §0).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyPos {
    /// True distances: keys rotated at their own positions, queries at theirs.
    Original,
    /// Every key sits at distance `D` from every query: pre-RoPE keys against queries rotated
    /// by `D` (LM-Infinite's starting tokens, InfLLM's memory).
    FixedDistance(usize),
    /// Keys rotated at these positions (one per key, in the queries' frame), e.g. slot
    /// positions for StreamingLLM sinks or a compacted SirLLM / CItruS cache.
    Virtual(Arc<[i64]>),
}

/// A set of KV slots attended with one position mode and one mask.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Span {
    pub slots: Slots,
    pub pos: KeyPos,
    pub mask: SpanMask,
}

impl Span {
    /// The common case: a contiguous run at true positions.
    pub fn original(slots: Range<usize>, mask: SpanMask) -> Span {
        Span {
            slots: Slots::Range(slots),
            pos: KeyPos::Original,
            mask,
        }
    }
}

/// What one layer attends to for the current chunk.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AttnPlan {
    pub spans: Vec<Span>,
    /// Report attention-probability column sums for these spans (indices into `spans`).
    pub observe: Vec<usize>,
}

/// Column sums of attention probabilities for the observed spans: `col_sums[i]` belongs to
/// `plan.observe[i]` and holds `n_heads × span_len` values (query head major), summed over the
/// chunk's query rows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LayerObs {
    pub col_sums: Vec<Vec<f32>>,
}
