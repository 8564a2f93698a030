//! The event queue: a binary heap of (time, sequence) keys over a slab of payloads.
//!
//! Payloads (messages with log entries) are large; keeping them out of the heap makes every
//! sift move 24 bytes instead of a whole message. The sequence number breaks ties in insertion
//! order, which keeps runs deterministic.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

pub(crate) struct Queue<T> {
    heap: BinaryHeap<Reverse<(u64, u64, u32)>>,
    slab: Vec<Option<T>>,
    free: Vec<u32>,
    sequence: u64,
}

impl<T> Queue<T> {
    pub fn new() -> Queue<T> {
        Queue {
            heap: BinaryHeap::new(),
            slab: Vec::new(),
            free: Vec::new(),
            sequence: 0,
        }
    }

    pub fn push(&mut self, time: u64, item: T) {
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slab[slot as usize] = Some(item);
                slot
            }
            None => {
                self.slab.push(Some(item));
                u32::try_from(self.slab.len() - 1).expect("fewer than 2^32 pending events")
            }
        };
        self.sequence += 1;
        self.heap.push(Reverse((time, self.sequence, slot)));
    }

    pub fn pop(&mut self) -> Option<(u64, T)> {
        let Reverse((time, _, slot)) = self.heap.pop()?;
        let item = self.slab[slot as usize]
            .take()
            .expect("queued slot holds an item");
        self.free.push(slot);
        Some((time, item))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_time_order_and_ties_in_insertion_order() {
        let mut q = Queue::new();
        q.push(5, "c");
        q.push(1, "a");
        q.push(5, "d");
        q.push(2, "b");
        let order: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(order, vec![(1, "a"), (2, "b"), (5, "c"), (5, "d")]);
        q.push(9, "e");
        assert_eq!(q.pop(), Some((9, "e")));
    }
}
