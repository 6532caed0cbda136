//! A Nexmark-style event generator and queries written in the DSL, for benchmarks and examples.
//!
//! Nexmark models an online auction: people open auctions and bid on them. This module has the
//! bid stream — the one most queries read — with a deterministic generator (the same seed makes
//! the same events), a compact binary serde (fixed-width big-endian fields and length-prefixed
//! strings, the cost of an Avro-like format rather than of JSON), the auctions bids are made on,
//! query 1 (currency conversion: every bid's price from dollars to euros) and a stream-table
//! join (every bid with its auction's category, from a table of auctions), and a q5-like
//! windowed query (bids per auction over hopping windows: the input of q5's hot items).

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::kstream::KStream;
use crate::serdes::{I64Serde, Serde};
use crate::topology::{Consumed, Produced, StreamsBuilder};

/// A bid on an auction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bid {
    /// The auction's id.
    pub auction: i64,
    /// The bidder's (person's) id.
    pub bidder: i64,
    /// The price, in cents.
    pub price: i64,
    /// Where the bid came from.
    pub channel: String,
    /// The page the bid was made on.
    pub url: String,
    /// When, in ms since the epoch.
    pub date_time: i64,
}

/// The binary form of a [`Bid`]: auction, bidder, price, date_time as 8 big-endian bytes each,
/// then channel and url as a 2-byte length and UTF-8.
#[derive(Debug, Clone, Copy, Default)]
pub struct BidSerde;

impl Serde<Bid> for BidSerde {
    fn serialize(&self, _topic: &str, bid: &Bid) -> Result<Option<Bytes>, String> {
        let mut buf = BytesMut::with_capacity(36 + bid.channel.len() + bid.url.len());
        buf.put_i64(bid.auction);
        buf.put_i64(bid.bidder);
        buf.put_i64(bid.price);
        buf.put_i64(bid.date_time);
        for text in [&bid.channel, &bid.url] {
            let len = u16::try_from(text.len())
                .map_err(|_| "a text field over 65535 bytes".to_string())?;
            buf.put_u16(len);
            buf.put_slice(text.as_bytes());
        }
        Ok(Some(buf.freeze()))
    }

    fn deserialize(&self, _topic: &str, bytes: Option<&Bytes>) -> Result<Bid, String> {
        let mut buf = bytes.ok_or("a bid without a value")?.clone();
        if buf.remaining() < 36 {
            return Err(format!("{} bytes are too few for a bid", buf.remaining()));
        }
        let (auction, bidder, price, date_time) =
            (buf.get_i64(), buf.get_i64(), buf.get_i64(), buf.get_i64());
        let mut text = || -> Result<String, String> {
            if buf.remaining() < 2 {
                return Err("a bid cut short".into());
            }
            let len = usize::from(buf.get_u16());
            if buf.remaining() < len {
                return Err("a bid cut short".into());
            }
            String::from_utf8(buf.split_to(len).to_vec()).map_err(|e| format!("not UTF-8: {e}"))
        };
        let channel = text()?;
        let url = text()?;
        Ok(Bid {
            auction,
            bidder,
            price,
            channel,
            url,
            date_time,
        })
    }
}

/// Deterministic bids: the same seed gives the same sequence.
#[derive(Debug, Clone)]
pub struct BidGenerator {
    state: u64,
    next_time: i64,
}

const CHANNELS: [&str; 4] = ["Google", "Facebook", "Baidu", "Apple"];

impl BidGenerator {
    /// A generator whose first bid is at `start_ms`, one bid per millisecond after it.
    pub fn new(seed: u64, start_ms: i64) -> BidGenerator {
        BidGenerator {
            state: seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407),
            next_time: start_ms,
        }
    }

    fn next_u64(&mut self) -> u64 {
        // SplitMix64: fast, and good enough to spread ids and prices.
        self.state = self.state.wrapping_add(0x9e3779b97f4a7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
        z ^ (z >> 31)
    }
}

impl Iterator for BidGenerator {
    type Item = Bid;

    fn next(&mut self) -> Option<Bid> {
        let auction = 1000 + (self.next_u64() % 10_000) as i64;
        let bidder = 1000 + (self.next_u64() % 100_000) as i64;
        let price = 100 + (self.next_u64() % 1_000_000) as i64;
        let channel = CHANNELS[(self.next_u64() % 4) as usize];
        let date_time = self.next_time;
        self.next_time += 1;
        Some(Bid {
            auction,
            bidder,
            price,
            channel: channel.to_string(),
            url: format!("https://www.nexmark.com/{channel}/item.htm?query={auction}"),
            date_time,
        })
    }
}

/// Query 1's computation on one bid: the price from dollars to euros (× 0.908, in cents).
pub fn q1_convert(mut bid: Bid) -> Bid {
    bid.price = bid.price * 908 / 1000;
    bid
}

/// Nexmark query 1 as a topology: every bid of `bids`, its price in euros, to `output`, keyed
/// by auction.
pub fn q1(builder: &StreamsBuilder, bids: &str, output: &str) -> KStream<i64, Bid> {
    let converted = builder
        .stream(bids, Consumed::with(I64Serde, BidSerde))
        .map_values(q1_convert);
    converted.to(output, Produced::with(I64Serde, BidSerde));
    converted
}

/// An auction (the table side of the join query).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auction {
    /// Its id (what bids name).
    pub id: i64,
    /// The seller's (person's) id.
    pub seller: i64,
    /// The category of the item.
    pub category: i64,
    /// The reserve price, in cents.
    pub reserve: i64,
}

/// An auction as four big-endian 8-byte numbers.
#[derive(Debug, Clone, Copy, Default)]
pub struct AuctionSerde;

impl Serde<Auction> for AuctionSerde {
    fn serialize(&self, _topic: &str, auction: &Auction) -> Result<Option<Bytes>, String> {
        let mut buf = BytesMut::with_capacity(32);
        for n in [
            auction.id,
            auction.seller,
            auction.category,
            auction.reserve,
        ] {
            buf.put_i64(n);
        }
        Ok(Some(buf.freeze()))
    }

    fn deserialize(&self, _topic: &str, bytes: Option<&Bytes>) -> Result<Auction, String> {
        let mut buf = bytes.ok_or("an auction without a value")?.clone();
        if buf.remaining() != 32 {
            return Err(format!(
                "{} bytes, not the 32 of an auction",
                buf.remaining()
            ));
        }
        Ok(Auction {
            id: buf.get_i64(),
            seller: buf.get_i64(),
            category: buf.get_i64(),
            reserve: buf.get_i64(),
        })
    }
}

/// The auctions bids of [`BidGenerator`] name: ids 1000 to 10999.
pub fn auctions(seed: u64) -> impl Iterator<Item = Auction> {
    let mut generator = BidGenerator::new(seed, 0);
    (1000..11_000).map(move |id| Auction {
        id,
        seller: 1000 + (generator.next_u64() % 100_000) as i64,
        category: 10 + (generator.next_u64() % 20) as i64,
        reserve: 100 + (generator.next_u64() % 1_000_000) as i64,
    })
}

/// A bid with its auction's category: the join query's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CategorizedBid {
    /// The auction's id.
    pub auction: i64,
    /// The bidder.
    pub bidder: i64,
    /// The price, in cents.
    pub price: i64,
    /// The auction's category.
    pub category: i64,
    /// When, in ms since the epoch.
    pub date_time: i64,
}

/// A categorised bid as five big-endian 8-byte numbers.
#[derive(Debug, Clone, Copy, Default)]
pub struct CategorizedBidSerde;

impl Serde<CategorizedBid> for CategorizedBidSerde {
    fn serialize(&self, _topic: &str, bid: &CategorizedBid) -> Result<Option<Bytes>, String> {
        let mut buf = BytesMut::with_capacity(40);
        for n in [
            bid.auction,
            bid.bidder,
            bid.price,
            bid.category,
            bid.date_time,
        ] {
            buf.put_i64(n);
        }
        Ok(Some(buf.freeze()))
    }

    fn deserialize(&self, _topic: &str, bytes: Option<&Bytes>) -> Result<CategorizedBid, String> {
        let mut buf = bytes.ok_or("a bid without a value")?.clone();
        if buf.remaining() != 40 {
            return Err(format!(
                "{} bytes, not the 40 of a categorised bid",
                buf.remaining()
            ));
        }
        Ok(CategorizedBid {
            auction: buf.get_i64(),
            bidder: buf.get_i64(),
            price: buf.get_i64(),
            category: buf.get_i64(),
            date_time: buf.get_i64(),
        })
    }
}

/// The join query's computation on one bid and its auction.
pub fn categorize(bid: Bid, auction: Auction) -> CategorizedBid {
    CategorizedBid {
        auction: bid.auction,
        bidder: bid.bidder,
        price: bid.price,
        category: auction.category,
        date_time: bid.date_time,
    }
}

/// The join query as a topology: every bid of `bids` (keyed by auction id) with the category
/// of its auction from the table of `auctions` (keyed by id), to `output`.
pub fn join(builder: &StreamsBuilder, bids: &str, auctions: &str, output: &str) {
    let table = builder.table(
        auctions,
        Consumed::with(I64Serde, AuctionSerde),
        crate::ktable::Materialized::with(AuctionSerde).named("auctions"),
    );
    builder
        .stream(bids, Consumed::with(I64Serde, BidSerde))
        .join(&table, |_, bid, auction| categorize(bid, auction))
        .to(output, Produced::with(I64Serde, CategorizedBidSerde));
}

/// q5's windows: 10 s long, a new one every 2 s (each bid counts in five).
pub fn q5_windows() -> crate::window::TimeWindows {
    crate::window::TimeWindows::of_size_with_no_grace(std::time::Duration::from_secs(10))
        .advance_by(std::time::Duration::from_secs(2))
}

/// The time of a bid from its bytes (its `date_time`, without decoding the rest).
fn bid_time(raw: &crate::topology::RawRecord) -> i64 {
    raw.value
        .as_ref()
        .and_then(|v| v.get(24..32))
        .and_then(|b| b.try_into().ok())
        .map_or(raw.timestamp, i64::from_be_bytes)
}

/// A q5-like query: how many bids each auction had in each hopping window of [`q5_windows`]
/// (bid time), to `output` with windowed keys.
pub fn q5(builder: &StreamsBuilder, bids: &str, output: &str) {
    builder
        .stream(
            bids,
            Consumed::with(I64Serde, BidSerde).with_timestamp_extractor(bid_time),
        )
        .group_by_key(crate::ktable::Grouped::with_key(I64Serde))
        .windowed_by(q5_windows())
        .count(crate::ktable::Materialized::counts().named("bids-per-auction"))
        .to_stream()
        .to(
            output,
            Produced::with(
                crate::window::WindowedSerde::new(I64Serde, std::time::Duration::from_secs(10)),
                I64Serde,
            ),
        );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bids_round_trip_and_bad_bytes_are_refused() {
        let bids: Vec<Bid> = BidGenerator::new(7, 1_000).take(100).collect();
        assert_eq!(
            bids,
            BidGenerator::new(7, 1_000).take(100).collect::<Vec<_>>()
        );
        assert_eq!(bids[99].date_time, 1_099);
        for bid in &bids {
            let bytes = BidSerde.serialize("bids", bid).unwrap();
            assert_eq!(&BidSerde.deserialize("bids", bytes.as_ref()).unwrap(), bid);
            let cut = bytes.unwrap().slice(..40);
            assert!(BidSerde
                .deserialize("bids", Some(&cut))
                .unwrap_err()
                .contains("cut short"));
        }
        assert!(BidSerde
            .deserialize("bids", Some(&Bytes::from_static(&[0; 3])))
            .is_err());
        assert_eq!(
            q1_convert(Bid {
                price: 1000,
                ..bids[0].clone()
            })
            .price,
            908
        );
    }
}
