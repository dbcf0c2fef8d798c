//! The measures (docs/SIMULATION.md) that need more than counting: the optimal preemptive schedule
//! (SRPT) to compare turnaround with, and the ROC AUC of trust as a liar detector.

/// Mean turnaround of the optimal preemptive single-slot schedule: shortest remaining
/// processing time first, one slot per round, jobs `(arrival_round, burst)`.
pub fn srpt_mean_turnaround(jobs: &[(u64, u32)]) -> f64 {
    let turnarounds = srpt_turnarounds(jobs);
    if turnarounds.is_empty() {
        return 0.0;
    }
    turnarounds.iter().sum::<u64>() as f64 / turnarounds.len() as f64
}

/// Each job's turnaround in the preemptive SRPT schedule of `jobs` (arrival slot, burst),
/// one slot at a time, ties by index.
pub fn srpt_turnarounds(jobs: &[(u64, u32)]) -> Vec<u64> {
    let mut turnarounds = vec![0u64; jobs.len()];
    let mut remaining: Vec<u32> = jobs.iter().map(|(_, b)| *b).collect();
    let mut done = 0usize;
    let mut slot = jobs.iter().map(|(a, _)| *a).min().unwrap_or(0);
    while done < jobs.len() {
        let next = (0..jobs.len())
            .filter(|i| jobs[*i].0 <= slot && remaining[*i] > 0)
            .min_by_key(|i| (remaining[*i], *i));
        if let Some(i) = next {
            remaining[i] = remaining[i].saturating_sub(1);
            if remaining[i] == 0 {
                done += 1;
                turnarounds[i] = slot + 1 - jobs[i].0;
            }
        } else if remaining.iter().all(|r| *r == 0) {
            break;
        }
        slot += 1;
    }
    turnarounds
}

/// The median of `values` (the mean of the middle two for an even count); `None` if empty.
pub fn median(values: &[u64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2] as f64),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) as f64 / 2.0),
    }
}

/// ROC AUC of `score` as a classifier that ranks `positives` above `negatives`: the
/// probability that a random positive scores higher than a random negative (ties count half).
/// `None` when either class is empty.
pub fn roc_auc(positives: &[u64], negatives: &[u64]) -> Option<f64> {
    if positives.is_empty() || negatives.is_empty() {
        return None;
    }
    let mut sorted = negatives.to_vec();
    sorted.sort_unstable();
    let mut wins = 0.0;
    for p in positives {
        let below = sorted.partition_point(|n| n < p);
        let equal = sorted.partition_point(|n| n <= p) - below;
        wins += below as f64 + equal as f64 / 2.0;
    }
    Some(wins / (positives.len() as f64 * negatives.len() as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn srpt_of_the_seed_preset() {
        // C (3) runs slots 1-3, then A (5) slots 4-8, then B (5) slots 9-13; arrivals at 1.
        let mean = srpt_mean_turnaround(&[(1, 5), (1, 5), (1, 3)]);
        assert!((mean - (8.0 + 13.0 + 3.0) / 3.0).abs() < 1e-9);
    }

    #[test]
    fn srpt_preempts_for_a_shorter_arrival() {
        // Job 0 (burst 4) at 0; job 1 (burst 1) arrives at 1 and runs at once.
        let mean = srpt_mean_turnaround(&[(0, 4), (1, 1)]);
        assert!((mean - (5.0 + 1.0) / 2.0).abs() < 1e-9);
    }

    #[test]
    fn auc_counts_pairs_and_ties() {
        assert_eq!(roc_auc(&[5, 6], &[1, 2]), Some(1.0));
        assert_eq!(roc_auc(&[1], &[5]), Some(0.0));
        assert_eq!(roc_auc(&[3], &[3]), Some(0.5));
        assert_eq!(roc_auc(&[], &[3]), None);
    }
}
