//! A Nexmark event generator and queries written in the DSL, for benchmarks and examples.
//!
//! Nexmark models an online auction: people open auctions and bid on them. [`Generator`] makes
//! Nexmark's events — persons, auctions and bids in its proportions (1 : 3 : 46), with its skew
//! (half the bids on the hottest recent auction) and event times at 10,000 events per second —
//! deterministically (the same seed makes the same events). Bids and auctions have compact
//! binary serdes (fixed-width big-endian fields and length-prefixed strings, the cost of an
//! Avro-like format rather than of JSON). The queries: q1 (currency conversion: every bid's
//! price from dollars to euros), a stream-table join (every bid with its auction's category,
//! from a table of auctions), and q5 (hot items: the auction with the most bids in each
//! hopping window).

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

/// Nexmark's generator settings, with the defaults of the Nexmark suite (Apache Beam's).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NexmarkConfig {
    /// Events per second of event time (`firstEventRate`): 10,000.
    pub events_per_sec: u64,
    /// Of every 50 events, 1 is a new person, 3 are new auctions and 46 are bids.
    pub person_proportion: u64,
    /// See `person_proportion`.
    pub auction_proportion: u64,
    /// See `person_proportion`.
    pub bid_proportion: u64,
    /// How many of the newest auctions bids go to (`numInFlightAuctions`): 100.
    pub in_flight_auctions: u64,
    /// How many of the newest people bid and sell (`numActivePeople`): 1,000.
    pub active_people: u64,
    /// One in this many bids goes to any in-flight auction, the rest to the hot one
    /// (`hotAuctionRatio`): 2.
    pub hot_auction_ratio: u64,
    /// Likewise for bidders (`hotBiddersRatio`): 4.
    pub hot_bidders_ratio: u64,
    /// Likewise for sellers (`hotSellersRatio`): 4.
    pub hot_sellers_ratio: u64,
}

impl Default for NexmarkConfig {
    fn default() -> NexmarkConfig {
        NexmarkConfig {
            events_per_sec: 10_000,
            person_proportion: 1,
            auction_proportion: 3,
            bid_proportion: 46,
            in_flight_auctions: 100,
            active_people: 1_000,
            hot_auction_ratio: 2,
            hot_bidders_ratio: 4,
            hot_sellers_ratio: 4,
        }
    }
}

/// The first ids, as Nexmark numbers them.
const FIRST_PERSON_ID: i64 = 1000;
const FIRST_AUCTION_ID: i64 = 1000;
const FIRST_CATEGORY_ID: i64 = 10;
const NUM_CATEGORIES: u64 = 5;
/// How far past the newest person or auction an id may point (a bid on an auction that does
/// not exist yet).
const ID_LEAD: u64 = 10;
/// The hot auction (and bidder, seller) is the first of each batch of this many.
const HOT_BATCH: u64 = 100;

const CHANNELS: [&str; 4] = ["Google", "Facebook", "Baidu", "Apple"];
const FIRST_NAMES: [&str; 11] = [
    "Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter",
];
const LAST_NAMES: [&str; 9] = [
    "Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris",
];
const CITIES: [&str; 10] = [
    "Phoenix",
    "Los Angeles",
    "San Francisco",
    "Boise",
    "Portland",
    "Bend",
    "Redmond",
    "Seattle",
    "Kent",
    "Cheyenne",
];
const STATES: [&str; 6] = ["AZ", "CA", "ID", "OR", "WA", "WY"];

/// A person: a bidder or a seller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// Its id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Email address.
    pub email: String,
    /// Credit card number.
    pub credit_card: String,
    /// City.
    pub city: String,
    /// State.
    pub state: String,
    /// When the person joined, in ms since the epoch.
    pub date_time: i64,
}

/// A Nexmark event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A new person.
    Person(Person),
    /// A new auction.
    Auction(Auction),
    /// A bid.
    Bid(Bid),
}

/// Nexmark's event generator: persons, auctions and bids in Nexmark's proportions, with its
/// skew — half the bids go to the hottest recent auction, a quarter of the bidders are the
/// hottest recent person — and event times at `events_per_sec`. Deterministic: the same seed
/// makes the same events.
#[derive(Debug, Clone)]
pub struct Generator {
    config: NexmarkConfig,
    state: u64,
    next_event: u64,
    start_ms: i64,
}

impl Generator {
    /// A generator with Nexmark's defaults whose first event is at `start_ms`.
    pub fn new(seed: u64, start_ms: i64) -> Generator {
        Generator::with_config(seed, start_ms, NexmarkConfig::default())
    }

    /// A generator with `config`.
    pub fn with_config(seed: u64, start_ms: i64, config: NexmarkConfig) -> Generator {
        Generator {
            config,
            state: seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407),
            next_event: 0,
            start_ms,
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

    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    fn total_proportion(&self) -> u64 {
        self.config.person_proportion + self.config.auction_proportion + self.config.bid_proportion
    }

    /// The number of the newest person at event `event` (0-based).
    fn last_person(&self, event: u64) -> u64 {
        let (epoch, offset) = (
            event / self.total_proportion(),
            event % self.total_proportion(),
        );
        epoch * self.config.person_proportion + offset.min(self.config.person_proportion - 1)
    }

    /// The number of the newest auction at event `event` (0-based).
    fn last_auction(&self, event: u64) -> u64 {
        let c = &self.config;
        let (mut epoch, mut offset) = (
            event / self.total_proportion(),
            event % self.total_proportion(),
        );
        if offset < c.person_proportion {
            // Before this epoch's auctions: the previous epoch's last one.
            if epoch == 0 {
                return 0;
            }
            epoch -= 1;
            offset = c.auction_proportion - 1;
        } else if offset >= c.person_proportion + c.auction_proportion {
            offset = c.auction_proportion - 1;
        } else {
            offset -= c.person_proportion;
        }
        epoch * c.auction_proportion + offset
    }

    /// Any recent person, a little past the newest possibly.
    fn some_person(&mut self, event: u64) -> u64 {
        let people = self.last_person(event) + 1;
        let active = people.min(self.config.active_people);
        people - active + self.below(active + ID_LEAD)
    }

    /// Any in-flight auction, a little past the newest possibly.
    fn some_auction(&mut self, event: u64) -> u64 {
        let newest = self.last_auction(event);
        let oldest = newest.saturating_sub(self.config.in_flight_auctions);
        oldest + self.below(newest - oldest + 1 + ID_LEAD)
    }

    /// Nexmark's prices: 1 to 1,000,000 dollars, log-uniform, in cents.
    fn price(&mut self) -> i64 {
        let unit = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        (10f64.powf(unit * 6.0) * 100.0).round() as i64
    }

    fn time_of(&self, event: u64) -> i64 {
        self.start_ms + (event * 1000 / self.config.events_per_sec.max(1)) as i64
    }

    fn person(&mut self, event: u64, date_time: i64) -> Person {
        let id = FIRST_PERSON_ID + self.last_person(event) as i64;
        let first = FIRST_NAMES[self.below(FIRST_NAMES.len() as u64) as usize];
        let last = LAST_NAMES[self.below(LAST_NAMES.len() as u64) as usize];
        let card: Vec<String> = (0..4)
            .map(|_| format!("{:04}", self.below(10_000)))
            .collect();
        Person {
            id,
            name: format!("{first} {last}"),
            email: format!("{}@{}.com", first.to_lowercase(), last.to_lowercase()),
            credit_card: card.join(" "),
            city: CITIES[self.below(CITIES.len() as u64) as usize].to_string(),
            state: STATES[self.below(STATES.len() as u64) as usize].to_string(),
            date_time,
        }
    }

    fn auction(&mut self, event: u64, date_time: i64) -> Auction {
        let id = FIRST_AUCTION_ID + self.last_auction(event) as i64;
        let seller = if self.below(self.config.hot_sellers_ratio) > 0 {
            (self.last_person(event) / HOT_BATCH) * HOT_BATCH
        } else {
            self.some_person(event)
        };
        let initial_bid = self.price();
        // Open for about twice the time the in-flight auctions span.
        let events_in_flight = self.config.in_flight_auctions * self.total_proportion()
            / self.config.auction_proportion.max(1);
        let horizon = (self.time_of(events_in_flight) - self.time_of(0)).max(1) as u64;
        Auction {
            id,
            seller: FIRST_PERSON_ID + seller as i64,
            category: FIRST_CATEGORY_ID + self.below(NUM_CATEGORIES) as i64,
            initial_bid,
            reserve: initial_bid + self.price(),
            date_time,
            expires: date_time + 1 + self.below(horizon * 2) as i64,
        }
    }

    fn bid(&mut self, event: u64, date_time: i64) -> Bid {
        let auction = if self.below(self.config.hot_auction_ratio) > 0 {
            (self.last_auction(event) / HOT_BATCH) * HOT_BATCH
        } else {
            self.some_auction(event)
        };
        let bidder = if self.below(self.config.hot_bidders_ratio) > 0 {
            // The second of the batch, so that hot bidders and hot sellers differ.
            (self.last_person(event) / HOT_BATCH) * HOT_BATCH + 1
        } else {
            self.some_person(event)
        };
        let auction = FIRST_AUCTION_ID + auction as i64;
        let channel = CHANNELS[self.below(CHANNELS.len() as u64) as usize];
        Bid {
            auction,
            bidder: FIRST_PERSON_ID + bidder as i64,
            price: self.price(),
            channel: channel.to_string(),
            url: format!("https://www.nexmark.com/{channel}/item.htm?query={auction}"),
            date_time,
        }
    }
}

impl Iterator for Generator {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        let event = self.next_event;
        self.next_event += 1;
        let date_time = self.time_of(event);
        let offset = event % self.total_proportion();
        Some(if offset < self.config.person_proportion {
            Event::Person(self.person(event, date_time))
        } else if offset < self.config.person_proportion + self.config.auction_proportion {
            Event::Auction(self.auction(event, date_time))
        } else {
            Event::Bid(self.bid(event, date_time))
        })
    }
}

/// The bids of a [`Generator`]'s events, in order.
pub fn bids(generator: Generator) -> impl Iterator<Item = Bid> {
    generator.filter_map(|event| match event {
        Event::Bid(bid) => Some(bid),
        _ => None,
    })
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
    /// The opening price, in cents.
    pub initial_bid: i64,
    /// The reserve price, in cents.
    pub reserve: i64,
    /// When it opened, in ms since the epoch.
    pub date_time: i64,
    /// When it closes.
    pub expires: i64,
}

/// An auction as seven big-endian 8-byte numbers.
#[derive(Debug, Clone, Copy, Default)]
pub struct AuctionSerde;

impl Serde<Auction> for AuctionSerde {
    fn serialize(&self, _topic: &str, auction: &Auction) -> Result<Option<Bytes>, String> {
        let mut buf = BytesMut::with_capacity(56);
        for n in [
            auction.id,
            auction.seller,
            auction.category,
            auction.initial_bid,
            auction.reserve,
            auction.date_time,
            auction.expires,
        ] {
            buf.put_i64(n);
        }
        Ok(Some(buf.freeze()))
    }

    fn deserialize(&self, _topic: &str, bytes: Option<&Bytes>) -> Result<Auction, String> {
        let mut buf = bytes.ok_or("an auction without a value")?.clone();
        if buf.remaining() != 56 {
            return Err(format!(
                "{} bytes, not the 56 of an auction",
                buf.remaining()
            ));
        }
        Ok(Auction {
            id: buf.get_i64(),
            seller: buf.get_i64(),
            category: buf.get_i64(),
            initial_bid: buf.get_i64(),
            reserve: buf.get_i64(),
            date_time: buf.get_i64(),
            expires: buf.get_i64(),
        })
    }
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

/// An auction and how many bids it had in a window: q5's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuctionCount {
    /// The auction's id.
    pub auction: i64,
    /// Its bids in the window.
    pub count: i64,
}

/// An auction count as two big-endian 8-byte numbers.
#[derive(Debug, Clone, Copy, Default)]
pub struct AuctionCountSerde;

impl Serde<AuctionCount> for AuctionCountSerde {
    fn serialize(&self, _topic: &str, value: &AuctionCount) -> Result<Option<Bytes>, String> {
        let mut buf = BytesMut::with_capacity(16);
        buf.put_i64(value.auction);
        buf.put_i64(value.count);
        Ok(Some(buf.freeze()))
    }

    fn deserialize(&self, _topic: &str, bytes: Option<&Bytes>) -> Result<AuctionCount, String> {
        let mut buf = bytes.ok_or("an auction count without a value")?.clone();
        if buf.remaining() != 16 {
            return Err(format!(
                "{} bytes, not the 16 of an auction count",
                buf.remaining()
            ));
        }
        Ok(AuctionCount {
            auction: buf.get_i64(),
            count: buf.get_i64(),
        })
    }
}

/// The hotter of two auctions: more bids, or the lower id on a tie.
pub fn hotter(a: AuctionCount, b: AuctionCount) -> AuctionCount {
    if (b.count, -b.auction) > (a.count, -a.auction) {
        b
    } else {
        a
    }
}

/// `materialized`, kept on disk too when `persistent`.
fn kept<V>(
    materialized: crate::ktable::Materialized<V>,
    persistent: bool,
) -> crate::ktable::Materialized<V> {
    if persistent {
        materialized.persistent()
    } else {
        materialized
    }
}

/// Nexmark query 5 (hot items): the auction with the most bids in each hopping window of
/// [`q5_windows`] (bid time), to `output` keyed by the window's start. Bids are counted per
/// auction and window, then each window keeps its hottest auction: counts only grow, so the
/// hottest of their updates is the hottest of the final counts. With `persistent`, both
/// stores are kept on disk too.
pub fn q5(builder: &StreamsBuilder, bids: &str, output: &str, persistent: bool) {
    builder
        .stream(
            bids,
            Consumed::with(I64Serde, BidSerde).with_timestamp_extractor(bid_time),
        )
        .group_by_key(crate::ktable::Grouped::with_key(I64Serde))
        .windowed_by(q5_windows())
        .count(kept(
            crate::ktable::Materialized::counts().named("bids-per-auction"),
            persistent,
        ))
        .to_stream()
        .map(|windowed: crate::window::Windowed<i64>, count| {
            (
                windowed.window.start,
                AuctionCount {
                    auction: windowed.key,
                    count,
                },
            )
        })
        .group_by_key(
            crate::ktable::Grouped::with(I64Serde, AuctionCountSerde).named("bids-per-window"),
        )
        .reduce(
            hotter,
            kept(
                crate::ktable::Materialized::with(AuctionCountSerde).named("hot-items"),
                persistent,
            ),
        )
        .to_stream()
        .to(output, Produced::with(I64Serde, AuctionCountSerde));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generator_makes_nexmarks_mix_deterministically() {
        let events: Vec<Event> = Generator::new(7, 1_000).take(5_000).collect();
        assert_eq!(
            events,
            Generator::new(7, 1_000).take(5_000).collect::<Vec<_>>()
        );
        let count = |f: fn(&Event) -> bool| events.iter().filter(|e| f(e)).count();
        assert_eq!(count(|e| matches!(e, Event::Person(_))), 100);
        assert_eq!(count(|e| matches!(e, Event::Auction(_))), 300);
        assert_eq!(count(|e| matches!(e, Event::Bid(_))), 4_600);
        // 10,000 events a second: event 4,999 at half a second.
        let last_time = match &events[4_999] {
            Event::Person(p) => p.date_time,
            Event::Auction(a) => a.date_time,
            Event::Bid(b) => b.date_time,
        };
        assert_eq!(last_time, 1_499);
        // Ids count up from 1000; bids name recent auctions, at most 10 past the newest.
        let mut newest_auction = 0;
        let mut hot = std::collections::HashMap::new();
        for event in &events {
            match event {
                Event::Auction(a) => {
                    assert!(a.id > newest_auction && a.reserve > a.initial_bid);
                    newest_auction = a.id;
                }
                Event::Bid(b) => {
                    assert!(b.auction <= newest_auction.max(1000) + 10, "{b:?}");
                    assert!((100..=100_000_000).contains(&b.price), "{b:?}");
                    *hot.entry(b.auction).or_insert(0) += 1;
                }
                Event::Person(p) => assert!(p.id >= 1000 && p.email.contains('@')),
            }
        }
        // Skewed: about half the bids go to the hot auction of their time, the first of
        // each hundred.
        let on_hot: i32 = hot
            .iter()
            .filter(|(auction, _)| (*auction - 1000) % 100 == 0)
            .map(|(_, n)| n)
            .sum();
        assert!(on_hot > 4_600 * 2 / 5, "{on_hot}");
    }

    #[test]
    fn bids_round_trip_and_bad_bytes_are_refused() {
        let bids: Vec<Bid> = super::bids(Generator::new(7, 1_000)).take(100).collect();
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
        let auction = Auction {
            id: 1,
            seller: 2,
            category: 3,
            initial_bid: 4,
            reserve: 5,
            date_time: 6,
            expires: 7,
        };
        let bytes = AuctionSerde.serialize("a", &auction).unwrap();
        assert_eq!(
            AuctionSerde.deserialize("a", bytes.as_ref()).unwrap(),
            auction
        );
        let count = AuctionCount {
            auction: 9,
            count: 4,
        };
        let bytes = AuctionCountSerde.serialize("c", &count).unwrap();
        assert_eq!(
            AuctionCountSerde.deserialize("c", bytes.as_ref()).unwrap(),
            count
        );
        let tie = AuctionCount {
            auction: 3,
            count: 4,
        };
        assert_eq!(hotter(count, tie), tie);
        assert_eq!(
            hotter(
                tie,
                AuctionCount {
                    auction: 9,
                    count: 5
                }
            )
            .auction,
            9
        );
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
