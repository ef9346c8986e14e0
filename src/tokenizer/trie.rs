//! A byte trie of vocabulary pieces: every piece that starts at a position of the text is
//! found in one walk, as long as the text matches, never by hashing candidate substrings
//! (whose cost grows with the square of the longest piece a file may declare).

#[derive(Clone)]
pub(crate) struct Trie {
    /// Node 0 is the root; each node's children sorted by byte.
    nodes: Vec<Node>,
}

#[derive(Clone, Default)]
struct Node {
    children: Vec<(u8, u32)>,
    /// The id of the piece that ends here.
    value: Option<u32>,
}

impl Trie {
    pub(crate) fn new<'a>(pieces: impl IntoIterator<Item = (&'a str, u32)>) -> Self {
        let mut trie = Trie { nodes: vec![Node::default()] };
        for (text, id) in pieces {
            let mut node = 0usize;
            for &b in text.as_bytes() {
                node = match trie.nodes[node].children.binary_search_by_key(&b, |&(c, _)| c) {
                    Ok(i) => trie.nodes[node].children[i].1 as usize,
                    Err(i) => {
                        trie.nodes.push(Node::default());
                        let child = (trie.nodes.len() - 1) as u32;
                        trie.nodes[node].children.insert(i, (b, child));
                        child as usize
                    }
                };
            }
            // The first of equal texts wins (they are deduplicated before).
            trie.nodes[node].value.get_or_insert(id);
        }
        trie
    }

    /// Every piece that is a prefix of `text`, shortest first, as `(length in bytes, id)`.
    pub(crate) fn prefixes<'t>(&'t self, text: &'t [u8]) -> impl Iterator<Item = (usize, u32)> + 't {
        let mut node = Some(0usize);
        text.iter().enumerate().map_while(move |(i, &b)| {
            let n = node?;
            let children = &self.nodes[n].children;
            let next = children.binary_search_by_key(&b, |&(c, _)| c).ok().map(|k| children[k].1 as usize);
            node = next;
            next.map(|m| (i + 1, self.nodes[m].value))
        })
        .filter_map(|(len, value)| value.map(|id| (len, id)))
    }

    /// The id of exactly `text`.
    pub(crate) fn get(&self, text: &str) -> Option<u32> {
        self.prefixes(text.as_bytes()).last().filter(|&(len, _)| len == text.len()).map(|(_, id)| id)
    }

    /// The longest piece that is a prefix of `text`.
    pub(crate) fn longest(&self, text: &[u8]) -> Option<(usize, u32)> {
        self.prefixes(text).last()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_prefix_shortest_first_and_exact_pieces() {
        let t = Trie::new([("▁a", 0), ("▁ab", 1), ("b", 2), ("▁abc", 3), ("x", 4)]);
        let text = "▁abd".as_bytes();
        assert_eq!(t.prefixes(text).collect::<Vec<_>>(), vec![(4, 0), (5, 1)]);
        assert_eq!(t.longest(text), Some((5, 1)));
        assert_eq!(t.longest(b"zz"), None);
        assert_eq!(t.get("▁abc"), Some(3));
        assert_eq!(t.get("▁abcd"), None);
        assert_eq!(t.get("▁"), None, "a path, not a piece");
    }

    /// A file may declare a piece of any length: the walk stops where the text leaves it (here
    /// after two bytes), instead of trying every substring up to that length.
    #[test]
    fn a_huge_piece_is_walked_only_as_far_as_the_text_follows_it() {
        let huge = "a".repeat(200_000);
        let t = Trie::new([(huge.as_str(), 0), ("a", 1), ("b", 2)]);
        let text = "ab".repeat(50_000);
        let n: usize = (0..text.len()).map(|i| t.prefixes(&text.as_bytes()[i..]).count()).sum();
        assert_eq!(n, text.len(), "one piece (a or b) at every position");
    }
}
