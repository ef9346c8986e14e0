//! The forward plan's structure and the fusion patterns backends look for in it.

mod common;

use hearth::model::{ForwardPlan, ModelConfig, Op};

fn plan() -> ForwardPlan {
    let header = hearth::gguf::read_header_file(&common::model_path()).unwrap();
    ForwardPlan::build(ModelConfig::from_header(&header).unwrap(), &header).unwrap()
}

#[test]
fn llama_plan_reads_top_to_bottom() {
    let p = plan();
    assert_eq!(p.ops.len(), 1 + 30 * 13 + 2);
    assert!(matches!(p.ops[0], Op::Embed { .. }));
    assert!(matches!(p.ops.last(), Some(Op::Logits { .. })));
    // Tied output: the head reuses the embedding table.
    let (Op::Embed { table, .. }, Some(Op::Logits { weight, .. })) = (&p.ops[0], p.ops.last()) else { unreachable!() };
    assert_eq!(table, weight);
    assert_eq!(p.weights.len(), 1 + 30 * 9 + 1);
}

#[test]
fn fusion_patterns_are_found_in_every_layer() {
    let p = plan();
    let runs = p.matmul_runs();
    assert_eq!(runs.len(), 60, "Q/K/V and gate/up of 30 layers");
    assert_eq!(runs.iter().filter(|(_, w)| w.len() == 3).count(), 30);
    assert_eq!(p.glu_triples().len(), 30);
    let norms: Vec<usize> = (0..p.ops.len()).filter(|&i| matches!(p.ops[i], Op::RmsNorm { .. })).collect();
    assert_eq!(norms.len(), 61);
    assert!(norms.iter().all(|&i| p.norm_folds_into_matmuls(i)));
}

#[test]
fn a_norm_read_by_anything_but_a_matmul_is_not_folded() {
    let mut p = plan();
    // Make the first layer's attention norm feed a RoPE as well: folding would lose it.
    let i = p.ops.iter().position(|o| matches!(o, Op::RmsNorm { .. })).unwrap();
    let Op::RmsNorm { out, .. } = p.ops[i] else { unreachable!() };
    p.ops.insert(i + 1, Op::Rope { target: out, n_heads: 1, rope: 0 });
    assert!(!p.norm_folds_into_matmuls(i));
}
