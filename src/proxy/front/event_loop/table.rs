//! The connection table: a mio `Token` names a slot, a generation tells apart the
//! connections that used the slot one after another.
//!
//! OS concept: names that outlive what they name. A worker may report on a connection
//! (`completions.rs`) after the loop closed it and gave its slot to a new client; the
//! kernel reuses file descriptor numbers the same way, which is why the loop never
//! keys anything by descriptor. A report carries the slot and the generation it was
//! made for, and one for an older generation is dropped.

/// Slots of `T`, reused after removal, each with its generation.
pub struct Table<T> {
    slots: Vec<(u64, Option<T>)>,
    free: Vec<usize>,
    live: usize,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Table {
            slots: Vec::new(),
            free: Vec::new(),
            live: 0,
        }
    }
}

impl<T> Table<T> {
    /// Stores `value`; returns its slot and generation.
    pub fn insert(&mut self, value: T) -> (usize, u64) {
        self.live += 1;
        if let Some(slot) = self.free.pop() {
            let entry = &mut self.slots[slot];
            entry.0 += 1;
            entry.1 = Some(value);
            return (slot, entry.0);
        }
        self.slots.push((0, Some(value)));
        (self.slots.len() - 1, 0)
    }

    /// The value in `slot`, if it is still of `generation`.
    pub fn get_mut(&mut self, slot: usize, generation: u64) -> Option<&mut T> {
        match self.slots.get_mut(slot) {
            Some((current, Some(value))) if *current == generation => Some(value),
            _ => None,
        }
    }

    /// The value in `slot` whatever its generation, with that generation.
    pub fn get_any(&mut self, slot: usize) -> Option<(u64, &mut T)> {
        match self.slots.get_mut(slot) {
            Some((generation, Some(value))) => Some((*generation, value)),
            _ => None,
        }
    }

    pub fn remove(&mut self, slot: usize) -> Option<T> {
        let value = self.slots.get_mut(slot)?.1.take()?;
        self.free.push(slot);
        self.live -= 1;
        Some(value)
    }

    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Every live slot with its generation.
    pub fn keys(&self) -> Vec<(usize, u64)> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, (_, value))| value.is_some())
            .map(|(slot, (generation, _))| (slot, *generation))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reused_slot_refuses_the_old_generation() {
        let mut table = Table::default();
        let (slot, first) = table.insert("a");
        assert_eq!(table.remove(slot), Some("a"));
        let (again, second) = table.insert("b");
        assert_eq!(again, slot, "the slot is reused");
        assert!(
            table.get_mut(slot, first).is_none(),
            "a late report for `a` is dropped"
        );
        assert_eq!(table.get_mut(slot, second), Some(&mut "b"));
        assert_eq!(table.len(), 1);
    }
}
