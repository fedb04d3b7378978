//! Replicated float state is computed in pure Rust (the `libm` crate, compiled into the module),
//! never by the host's libm: a replica or an AOF replay on another system must build the same
//! bits (interest weights, engagement, filter sizing, the distinct-items estimate). These golden
//! values pin that: they hold on every host, and change only if the formulas do.

use session_core::activity::bloom::ScalableBloom;
use session_core::activity::hash::distinct_hash;
use session_core::activity::hll::HyperLogLog;
use session_core::activity::interests::decay;
use session_core::enrich::engagement;

#[test]
fn decay_bits_are_the_same_on_every_host() {
    let cases = [
        ((1, 3_600_000), 0x3fef_ffff_98a1_6291_u64),
        ((1_234_567, 3_600_000), 0x3fe9_3add_2d9a_4be1),
        ((86_400_000, 3_600_000), 0x3e70_0000_0000_0000),
        ((7, 13), 0x3fe6_083b_0ff2_98c3),
        // inputs where glibc 2.36's exp2 rounds the other way: a build using the host's libm
        // fails here on such hosts
        ((42_698, 3_600_000), 0x3fef_bced_c1df_27df),
        ((67_229, 3_600_000), 0x3fef_96a4_b5a1_4799),
        ((96_866, 3_600_000), 0x3fef_68a1_351a_7d6b),
    ];
    for ((dt, half_life), bits) in cases {
        assert_eq!(
            decay(dt, half_life).to_bits(),
            bits,
            "decay({dt}, {half_life})"
        );
    }
}

#[test]
fn engagement_bits_are_the_same_on_every_host() {
    let cases = [
        ((1, 1, 0, 1800), 0x3fdc_370e_5106_cf56_u64),
        ((100, 37, 123_456, 1800), 0x3fef_21e9_335b_7c78),
        ((5000, 3000, 9_999_999, 60), 0x3fe3_3333_3333_3333),
        // where glibc 2.36's exp differs in the last bit
        ((24, 1, 296_280, 1800), 0x3fe4_01fd_a173_d404),
        ((24, 7, 296_280, 1800), 0x3fe7_4617_50ad_742a),
        ((24, 13, 296_280, 1800), 0x3fe9_10f3_e1d7_8282),
    ];
    for ((events, unique, idle, dormant), bits) in cases {
        assert_eq!(
            engagement(events, unique, idle, dormant).to_bits(),
            bits,
            "engagement({events}, {unique}, {idle}, {dormant})"
        );
    }
}

#[test]
fn filter_sizing_is_the_same_on_every_host() {
    for (capacity, error, bits, hashes) in [
        (128, 0.01, 1472, 8),
        (1000, 0.001, 15872, 11),
        (7, 0.2, 64, 6),
    ] {
        let mut filter = ScalableBloom::new(capacity, error);
        filter.insert_hashes((1, 2));
        let layer = &filter.layers()[0];
        assert_eq!(
            filter.layer_bits(layer).len() * 64,
            bits,
            "{capacity} {error}"
        );
        assert_eq!(layer.hashes, hashes, "{capacity} {error}");
    }
}

#[test]
fn distinct_estimate_is_the_same_on_every_host() {
    // exact to 512, then dense: Ertl's estimator (sigma by repeated squaring) blended from the switch
    let mut hll = HyperLogLog::new(10);
    let mut estimates = Vec::new();
    for i in 0..5000u64 {
        hll.insert_hash(distinct_hash(format!("item:{i}").as_bytes()));
        if [99, 999, 2999, 4999].contains(&i) {
            estimates.push(hll.estimate());
        }
    }
    assert_eq!(estimates, GOLDEN_ESTIMATES);
}

const GOLDEN_ESTIMATES: [u64; 4] = [100, 991, 3067, 4983];
