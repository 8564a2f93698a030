//! Majority arithmetic.
//!
//! A majority quorum of `n` members has `n / 2 + 1` of them; any two majorities of the same
//! membership intersect, which is the fact every quorum-based protocol's safety rests on.

/// Members in a majority of `n` members.
///
/// # Panics
/// If `n` is zero: an empty membership has no quorum.
pub fn majority(n: usize) -> usize {
    assert!(n > 0, "a membership of zero nodes has no quorum");
    n / 2 + 1
}

/// The highest value that at least a majority of `values` reach or exceed: for match indices,
/// the highest log index replicated on a majority.
///
/// # Panics
/// If `values` is empty.
pub fn majority_floor(values: &mut [u64]) -> u64 {
    let quorum = majority(values.len());
    values.sort_unstable_by(|a, b| b.cmp(a));
    values[quorum - 1]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn majorities_of_small_clusters() {
        assert_eq!(majority(1), 1);
        assert_eq!(majority(2), 2);
        assert_eq!(majority(3), 2);
        assert_eq!(majority(4), 3);
        assert_eq!(majority(5), 3);
    }

    #[test]
    fn majority_floor_picks_the_quorum_value() {
        assert_eq!(majority_floor(&mut [5, 1, 3]), 3);
        assert_eq!(majority_floor(&mut [9, 9, 1, 1, 2]), 2);
        assert_eq!(majority_floor(&mut [4]), 4);
    }

    proptest! {
        #[test]
        fn majority_floor_is_reached_by_a_majority_and_nothing_higher_is(
            values in proptest::collection::vec(0u64..20, 1..9)
        ) {
            let floor = majority_floor(&mut values.clone());
            let reaching = values.iter().filter(|v| **v >= floor).count();
            prop_assert!(reaching >= majority(values.len()));
            let above = values.iter().filter(|v| **v > floor).count();
            prop_assert!(above < majority(values.len()));
        }
    }
}
