//! The chunk-fed GGUF reader: identical results for any chunking, typed errors for every kind of
//! malformed file, and no allocation by sizes the file merely claims.

mod common;
#[path = "common/gguf_writer.rs"]
#[allow(dead_code)]
mod gguf_writer;

use std::alloc::{GlobalAlloc, Layout, System};
use std::hash::{Hash, Hasher};
use std::cell::Cell;

use gguf_writer::{GgufFile, Tensor, Val};
use hearth::gguf::{GgufError, GgufEvent, GgufReader};

/// Counts this thread's live heap bytes (tests run in parallel) so a test can bound what the
/// reader allocates.
struct Counting;
thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let _ = LIVE.try_with(|live| {
            live.set(live.get() + l.size());
            let _ = PEAK.try_with(|p| p.set(p.get().max(live.get())));
        });
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        let _ = LIVE.try_with(|live| live.set(live.get().saturating_sub(l.size())));
        System.dealloc(p, l)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Feeds `bytes` in chunks of `chunk` and returns a digest of every event, or the first error.
fn digest(bytes: &[u8], chunk: usize, total: Option<u64>) -> Result<Vec<String>, GgufError> {
    let mut r = match total {
        Some(n) => GgufReader::with_total_len(n),
        None => GgufReader::new(),
    };
    let mut out = Vec::new();
    for c in bytes.chunks(chunk) {
        r.push(c)?;
        while let Some(ev) = r.next_event() {
            out.push(describe(&ev));
        }
    }
    r.finish()?;
    Ok(out)
}

fn describe(ev: &GgufEvent) -> String {
    match ev {
        GgufEvent::Header(h) => {
            let mut s = std::collections::hash_map::DefaultHasher::new();
            for (k, v) in h.metadata.iter() {
                k.hash(&mut s);
                format!("{v:?}").hash(&mut s);
            }
            format!("header v{} kv={} tensors={:?} data@{} md#{:x}", h.version, h.metadata.len(), h.tensors, h.data_offset, s.finish())
        }
        GgufEvent::Tensor(t) => {
            let mut s = std::collections::hash_map::DefaultHasher::new();
            t.bytes.hash(&mut s);
            format!("tensor {} {} {} #{:x}", t.index, t.info.name, t.bytes.len(), s.finish())
        }
        GgufEvent::TensorPart(t) => format!("part {} {} @{} +{} last={}", t.index, t.info.name, t.offset, t.bytes.len(), t.last),
    }
}

fn err(bytes: &[u8]) -> GgufError {
    digest(bytes, 5, Some(bytes.len() as u64)).expect_err("file must be rejected")
}

#[test]
fn real_model_gives_identical_events_for_any_chunk_size() {
    let bytes = std::fs::read(common::model_path()).unwrap();
    let whole = digest(&bytes, 1 << 20, Some(bytes.len() as u64)).unwrap();
    assert_eq!(whole.len(), 1 + 272, "header and every tensor");
    assert!(whole[0].starts_with("header v3"));
    assert_eq!(digest(&bytes, 7, None).unwrap(), whole);
    assert_eq!(digest(&bytes, 1, None).unwrap(), whole);
}

#[test]
fn header_is_yielded_before_tensor_data_arrives() {
    let bytes = GgufFile::simple().bytes();
    let mut r = GgufReader::new();
    let header_len = bytes.len() - 32 - 16;
    r.push(&bytes[..header_len]).unwrap();
    assert!(matches!(r.next_event(), Some(GgufEvent::Header(h)) if h.tensors.len() == 2));
    assert!(r.next_event().is_none());
    r.push(&bytes[header_len..]).unwrap();
    let names: Vec<String> = std::iter::from_fn(|| r.next_event())
        .map(|e| match e {
            GgufEvent::Tensor(t) => t.info.name,
            _ => panic!("one header only"),
        })
        .collect();
    assert_eq!(names, ["a", "b"]);
    r.finish().unwrap();
}

#[test]
fn metadata_accessors_are_typed() {
    let bytes = GgufFile::simple().bytes();
    let mut r = GgufReader::new();
    r.push(&bytes).unwrap();
    let Some(GgufEvent::Header(h)) = r.next_event() else { panic!() };
    assert_eq!(h.metadata.get_u64("x.count").unwrap(), Some(7));
    assert_eq!(h.metadata.require_str("general.architecture").unwrap(), "llama");
    assert!(matches!(h.metadata.get_str("x.count"), Err(GgufError::WrongValueType { .. })));
    assert!(matches!(h.metadata.require_u64("nope"), Err(GgufError::MissingKey(k)) if k == "nope"));
}

#[test]
fn bad_magic_version_and_endianness() {
    let mut b = GgufFile::simple().bytes();
    b[0] = b'X';
    // Rejected as soon as the magic is in, before the rest of the header.
    let mut r = GgufReader::new();
    assert!(matches!(r.push(&b[..4]), Err(GgufError::BadMagic(_))));
    for (v, want) in [(1u32, GgufError::UnsupportedVersion(1)), (4, GgufError::UnsupportedVersion(4)), (3u32.swap_bytes(), GgufError::BigEndian)] {
        let mut f = GgufFile::simple();
        f.version = v;
        assert_eq!(err(&f.bytes()), want);
    }
    let mut f = GgufFile::simple();
    f.version = 2;
    assert!(digest(&f.bytes(), 3, None).is_ok(), "version 2 is read");
}

#[test]
fn bad_metadata_values() {
    let with = |kv: (String, Val)| {
        let mut f = GgufFile::simple();
        f.kvs.push(kv);
        err(&f.bytes())
    };
    assert!(matches!(with(("k".into(), Val::Raw(99, vec![]))), GgufError::BadValueType { ty: 99, .. }));
    assert!(matches!(with(("k".into(), Val::Bool(2))), GgufError::BadBool { value: 2, .. }));
    assert!(matches!(with(("x.count".into(), Val::U32(1))), GgufError::DuplicateKey(k) if k == "x.count"));
    assert!(matches!(with(("general.alignment".into(), Val::U32(3))), GgufError::BadAlignment(3)));
    let mut bad_utf8 = Vec::new();
    bad_utf8.extend_from_slice(&2u64.to_le_bytes());
    bad_utf8.extend_from_slice(&[0xff, 0xfe]);
    assert!(matches!(with(("k".into(), Val::Raw(8, bad_utf8))), GgufError::InvalidUtf8 { .. }));
    // An array claiming more elements than the file can hold.
    let mut arr = 4u32.to_le_bytes().to_vec();
    arr.extend_from_slice(&(1u64 << 40).to_le_bytes());
    assert!(matches!(with(("k".into(), Val::Raw(9, arr))), GgufError::CountTooLarge { .. }));
    // Nested arrays beyond the depth limit.
    let mut nested = Vec::new();
    for _ in 0..8 {
        nested.extend_from_slice(&9u32.to_le_bytes());
        nested.extend_from_slice(&1u64.to_le_bytes());
    }
    assert!(matches!(with(("k".into(), Val::Raw(9, nested))), GgufError::NestedTooDeep(_)));
    // Arrays of strings and of arrays, and empty arrays, are values like any other.
    let mut f = GgufFile::simple();
    f.kvs.push(("empty".into(), Val::ArrU32(vec![])));
    f.kvs.push(("nums".into(), Val::ArrU32(vec![1, 2, 3])));
    let b = f.bytes();
    let mut r = GgufReader::new();
    r.push(&b).unwrap();
    let Some(GgufEvent::Header(h)) = r.next_event() else { panic!() };
    assert_eq!(h.metadata.get_array("empty").unwrap().unwrap().len(), 0);
    assert_eq!(h.metadata.get_array_of("nums", "u64", |v| v.as_u64()).unwrap().unwrap(), vec![1, 2, 3]);
}

#[test]
fn bad_counts_are_rejected_before_allocation() {
    let mut b = b"GGUF".to_vec();
    b.extend_from_slice(&3u32.to_le_bytes());
    b.extend_from_slice(&u64::MAX.to_le_bytes());
    b.extend_from_slice(&0u64.to_le_bytes());
    assert!(matches!(digest(&b, 64, None), Err(GgufError::CountTooLarge { what: "tensor", .. })));
    // A string that claims 60 MiB: the reader waits for the bytes instead of reserving them.
    let mut f = GgufFile::simple();
    let mut claim = (60u64 << 20).to_le_bytes().to_vec();
    claim.extend_from_slice(b"only a few bytes follow");
    f.kvs.insert(0, ("k".into(), Val::Raw(8, claim)));
    let b = f.bytes();
    let before = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(before));
    let mut r = GgufReader::new();
    r.push(&b).unwrap();
    assert!(r.next_event().is_none());
    assert!(PEAK.with(Cell::get) - before < 1 << 20, "reader allocated by a claimed size");
    assert!(matches!(r.finish(), Err(GgufError::Truncated { .. })));
    // Knowing the file length, the same claim is rejected outright.
    assert!(matches!(err(&b), GgufError::Truncated { .. }));
    let mut f = GgufFile::simple();
    f.kvs.insert(0, ("k".into(), Val::Raw(8, (1u64 << 40).to_le_bytes().to_vec())));
    assert!(matches!(digest(&f.bytes(), 64, None), Err(GgufError::StringTooLong { .. })));
}

#[test]
fn bad_tensor_infos() {
    let with = |edit: &dyn Fn(&mut GgufFile)| {
        let mut f = GgufFile::simple();
        edit(&mut f);
        err(&f.bytes())
    };
    assert!(matches!(with(&|f| f.tensors[0].dims = vec![1; 5]), GgufError::TooManyDims { n_dims: 5, .. }));
    assert!(matches!(with(&|f| f.tensors[0].dims = vec![8, 0]), GgufError::BadShape { .. }));
    assert!(matches!(with(&|f| f.tensors[0].dims = vec![u64::MAX, 4]), GgufError::BadShape { .. }));
    assert!(matches!(with(&|f| f.tensors[0].ty = 16), GgufError::UnsupportedTensorType { ty_name: "IQ2_XXS", .. }));
    // A K-quant row must be whole 256-element super-blocks.
    assert!(matches!(
        with(&|f| {
            f.tensors[0].ty = 12;
            f.tensors[0].dims = vec![128];
        }),
        GgufError::BadRowLength { row: 128, block: 256, .. }
    ));
    assert!(matches!(with(&|f| f.tensors[0].ty = 999), GgufError::UnsupportedTensorType { ty_name: "unknown", .. }));
    assert!(matches!(
        with(&|f| {
            f.tensors[0].ty = 2;
            f.tensors[0].dims = vec![33];
        }),
        GgufError::BadRowLength { row: 33, block: 32, .. }
    ));
    assert!(matches!(with(&|f| f.tensors[1].name = "a".into()), GgufError::DuplicateTensor(_)));
    assert!(matches!(with(&|f| f.tensors[1].offset = 48), GgufError::MisalignedTensor { offset: 48, .. }));
    assert!(matches!(with(&|f| f.tensors[1].offset = 0), GgufError::OverlappingTensors { .. }));
    let mut f = GgufFile::simple();
    f.tensors.push(Tensor { name: "far".into(), dims: vec![4], ty: 0, offset: 1 << 20, data: vec![] });
    let mut b = f.bytes();
    b.truncate(b.len() - 16);
    assert!(matches!(err(&b), GgufError::TensorOutOfBounds { .. }));
}

#[test]
fn truncation_anywhere_is_reported() {
    let b = std::fs::read(common::golden_model_dir().join("synthetic/tiny32_q4_1.gguf")).unwrap();
    let full = digest(&b, 4096, None).unwrap();
    for cut in [0, 3, 20, 30, 1000, b.len() / 2, b.len() - 1] {
        match digest(&b[..cut], 4096, None) {
            Err(GgufError::Truncated { at, .. }) => assert!(at <= cut as u64),
            other => panic!("cut at {cut}: {other:?}"),
        }
    }
    // Trailing bytes after the last tensor are ignored.
    let mut longer = b.clone();
    longer.extend_from_slice(&[0; 100]);
    assert_eq!(digest(&longer, 4096, None).unwrap(), full);
}

#[test]
fn reader_refuses_input_after_an_error() {
    let mut r = GgufReader::new();
    assert!(r.push(b"NOPE").is_err());
    assert_eq!(r.push(b"GGUF"), Err(GgufError::Finished));
    assert_eq!(r.finish(), Err(GgufError::Finished));
}

#[test]
fn files_without_tensors_or_metadata_are_read() {
    let mut f = GgufFile::simple();
    f.tensors.clear();
    let events = digest(&f.bytes(), 3, None).unwrap();
    assert_eq!(events.len(), 1);
    assert!(events[0].starts_with("header v3 kv=2 tensors=[]"));
    f.kvs.clear();
    assert!(digest(&f.bytes(), 1, None).unwrap()[0].starts_with("header v3 kv=0"));
}

#[test]
fn pieces_are_whole_rows_that_rebuild_each_tensor() {
    let bytes = std::fs::read(common::model_path()).unwrap();
    let mut whole = GgufReader::with_total_len(bytes.len() as u64);
    let mut pieces = GgufReader::with_total_len(bytes.len() as u64);
    pieces.deliver_in_pieces(1 << 20);
    let mut tensors = Vec::new();
    let mut rebuilt: Vec<Vec<u8>> = Vec::new();
    let mut largest = 0;
    for c in bytes.chunks(777_777) {
        whole.push(c).unwrap();
        pieces.push(c).unwrap();
        while let Some(ev) = whole.next_event() {
            if let GgufEvent::Tensor(t) = ev {
                tensors.push(t.bytes);
            }
        }
        while let Some(ev) = pieces.next_event() {
            match ev {
                GgufEvent::Tensor(_) => panic!("whole tensor delivered in piece mode"),
                GgufEvent::TensorPart(p) => {
                    let row = p.info.n_bytes / p.info.dims.iter().skip(1).product::<u64>();
                    assert_eq!(p.offset % row, 0, "{}", p.info.name);
                    assert_eq!(p.bytes.len() as u64 % row, 0, "{}", p.info.name);
                    assert!(p.bytes.len() as u64 <= (1 << 20).max(row), "{}: piece of {}", p.info.name, p.bytes.len());
                    largest = largest.max(p.bytes.len());
                    if p.offset == 0 {
                        rebuilt.push(Vec::new());
                    }
                    let t = rebuilt.last_mut().unwrap();
                    assert_eq!(t.len() as u64, p.offset);
                    t.extend_from_slice(&p.bytes);
                    assert_eq!(p.last, t.len() as u64 == p.info.n_bytes);
                }
                GgufEvent::Header(_) => {}
            }
        }
    }
    pieces.finish().unwrap();
    assert_eq!(rebuilt.len(), tensors.len());
    assert!(rebuilt == tensors, "pieces rebuild every tensor exactly");
    assert!(largest > 900_000, "pieces are close to the requested size ({largest})");
}

/// Found by fuzzing: in piece mode, without a known file length, a tensor whose one row the
/// header claims to be 64 TiB made the reader reserve room for that row before any of its
/// bytes arrived (an allocation failure aborts the process). Memory now follows the bytes.
#[test]
fn a_huge_claimed_row_allocates_only_what_arrives() {
    let mut f = GgufFile::simple();
    f.tensors.truncate(1);
    f.tensors[0].dims = vec![1 << 44];
    f.tensors[0].data.truncate(64);
    let bytes = f.bytes();
    let mut r = GgufReader::new();
    r.deliver_in_pieces(4096);
    r.push(&bytes).expect("the header is valid; the data simply has not arrived");
    assert!(r.finish().is_err(), "the tensor never completes");
    // The fuzz input itself (fuzz/regressions/gguf_reader/) still parses to an error or a model.
    let input = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/regressions/gguf_reader/claimed-row-64tib-in-pieces")).unwrap();
    let mut r = GgufReader::new();
    r.deliver_in_pieces(64 + (input[0] as usize >> 2) * 16);
    let _ = r.push(&input[1..]);
}
