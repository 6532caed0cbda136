//! `sluice groups list|describe|delete|reset-offsets`, as kafka-consumer-groups does them.

use anyhow::Context;
use kafka_protocol::ResponseError;
use sluice_log::client::groups::OffsetReset;
use sluice_log::client::Client;

use super::{runtime, Connect};

#[derive(Debug, clap::Args)]
pub struct GroupsArgs {
    #[command(flatten)]
    connect: Connect,
    #[command(subcommand)]
    command: GroupsCommand,
}

#[derive(Debug, clap::Subcommand)]
enum GroupsCommand {
    /// List consumer groups.
    List,
    /// Members, assignments, committed offsets, log end offsets and lag of a group.
    Describe {
        /// Group id.
        #[arg(long)]
        group: String,
    },
    /// Delete groups (they must have no active members).
    Delete {
        /// Group id; repeatable.
        #[arg(long, required = true)]
        group: Vec<String>,
    },
    /// Move a group's committed offsets (the group must have no active members). Shows the plan
    /// unless --execute is given.
    ResetOffsets {
        /// Group id.
        #[arg(long)]
        group: String,
        /// Topic (all partitions), or `topic:0,2` for some partitions.
        #[arg(long)]
        topic: String,
        /// To the earliest offsets.
        #[arg(long = "to-earliest", group = "target")]
        to_earliest: bool,
        /// To the latest offsets.
        #[arg(long = "to-latest", group = "target")]
        to_latest: bool,
        /// To the first offsets at or after this time: `YYYY-MM-DDTHH:mm:SS.sss` (UTC) or
        /// milliseconds since the epoch.
        #[arg(long = "to-datetime", group = "target")]
        to_datetime: Option<String>,
        /// By this many offsets from the committed ones (negative goes back).
        #[arg(long = "shift-by", group = "target", allow_hyphen_values = true)]
        shift_by: Option<i64>,
        /// To this offset (clamped to each partition's range).
        #[arg(long = "to-offset", group = "target")]
        to_offset: Option<i64>,
        /// Only show the new offsets (the default).
        #[arg(long = "dry-run")]
        dry_run: bool,
        /// Apply the new offsets.
        #[arg(long, conflicts_with = "dry_run")]
        execute: bool,
    },
}

/// Parses `YYYY-MM-DDTHH:mm:SS[.sss]` (UTC) or epoch milliseconds.
fn parse_datetime(value: &str) -> anyhow::Result<i64> {
    if let Ok(ms) = value.parse::<i64>() {
        return Ok(ms);
    }
    let bad = || {
        anyhow::anyhow!(
            "--to-datetime {value:?}: expected YYYY-MM-DDTHH:mm:SS.sss (UTC) or milliseconds"
        )
    };
    let (date, time) = value
        .trim_end_matches('Z')
        .split_once('T')
        .ok_or_else(bad)?;
    let date: Vec<i64> = date
        .split('-')
        .map(|p| p.parse().map_err(|_| bad()))
        .collect::<anyhow::Result<_>>()?;
    let (hms, millis) = time.split_once('.').unwrap_or((time, "0"));
    let hms: Vec<i64> = hms
        .split(':')
        .map(|p| p.parse().map_err(|_| bad()))
        .collect::<anyhow::Result<_>>()?;
    let (&[year, month, day], &[hour, minute, second]) = (date.as_slice(), hms.as_slice()) else {
        return Err(bad());
    };
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return Err(bad());
    }
    let millis: i64 = format!("{millis:0<3}")[..3].parse().map_err(|_| bad())?;
    // Days since the epoch (proleptic Gregorian calendar).
    let (y, m) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Ok(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + millis)
}

async fn partitions_of(client: &Client, spec: &str) -> anyhow::Result<(String, Vec<i32>)> {
    match spec.split_once(':') {
        Some((topic, list)) => {
            let partitions = list
                .split(',')
                .map(|p| {
                    p.trim()
                        .parse()
                        .with_context(|| format!("--topic {spec:?}: bad partition {p:?}"))
                })
                .collect::<anyhow::Result<_>>()?;
            Ok((topic.to_string(), partitions))
        }
        None => {
            let info = client
                .topic(spec, false)
                .await
                .with_context(|| format!("topic {spec}"))?;
            Ok((spec.to_string(), (0..info.leaders.len() as i32).collect()))
        }
    }
}

pub fn run(args: GroupsArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async move {
        let client = args.connect.client().await?;
        match args.command {
            GroupsCommand::List => {
                for (group, _, _) in client.list_groups().await? {
                    println!("{group}");
                }
            }
            GroupsCommand::Describe { group } => {
                let lags = match client.group_lag(&group).await {
                    Err(sluice_log::Error::Broker { code: ResponseError::GroupIdNotFound, .. }) => {
                        anyhow::bail!("Consumer group '{group}' does not exist.")
                    }
                    other => other?,
                };
                if lags.iter().all(|l| l.owner.is_none()) {
                    println!("\nConsumer group '{group}' has no active members.");
                }
                println!();
                println!(
                    "{:<20} {:<20} {:>9} {:>15} {:>15} {:>8} {:<40} {:<16} CLIENT-ID",
                    "GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST"
                );
                let dash = |v: Option<i64>| v.map_or("-".to_string(), |v| v.to_string());
                for lag in lags {
                    let (member, host, client_id) = lag.owner.unwrap_or_else(|| ("-".into(), "-".into(), "-".into()));
                    println!(
                        "{:<20} {:<20} {:>9} {:>15} {:>15} {:>8} {:<40} {:<16} {}",
                        group,
                        lag.topic,
                        lag.partition,
                        dash(lag.committed),
                        dash(lag.log_end),
                        dash(lag.lag),
                        member,
                        host,
                        client_id
                    );
                }
            }
            GroupsCommand::Delete { group } => {
                for (name, result) in client.delete_groups(&group).await? {
                    match result {
                        Ok(()) => println!("Deletion of requested consumer groups ('{name}') was successful."),
                        Err(err) => return Err(anyhow::Error::new(err).context(format!("delete group {name}"))),
                    }
                }
            }
            GroupsCommand::ResetOffsets { group, topic, to_earliest, to_latest, to_datetime, shift_by, to_offset, dry_run: _, execute } => {
                let reset = if to_earliest {
                    OffsetReset::Earliest
                } else if to_latest {
                    OffsetReset::Latest
                } else if let Some(datetime) = to_datetime.as_deref() {
                    OffsetReset::Timestamp(parse_datetime(datetime)?)
                } else if let Some(by) = shift_by {
                    OffsetReset::ShiftBy(by)
                } else if let Some(offset) = to_offset {
                    OffsetReset::Offset(offset)
                } else {
                    anyhow::bail!("give one of --to-earliest, --to-latest, --to-datetime, --shift-by, --to-offset")
                };
                let (topic, partitions) = partitions_of(&client, &topic).await?;
                let plan = client
                    .plan_offset_reset(&group, &topic, &partitions, reset)
                    .await
                    .with_context(|| format!("reset the offsets of group {group}"))?;
                println!("\n{:<20} {:<20} {:>9} {:>12}", "GROUP", "TOPIC", "PARTITION", "NEW-OFFSET");
                for (tp, offset) in &plan {
                    let (topic, partition) = (&*tp.topic, tp.partition);
                    println!("{group:<20} {topic:<20} {partition:>9} {offset:>12}");
                }
                if execute {
                    client.commit_offsets(&group, &plan).await?;
                } else {
                    eprintln!("(dry run: add --execute to apply)");
                }
            }
        }
        anyhow::Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_parse_like_kafka_consumer_groups() {
        assert_eq!(parse_datetime("1970-01-01T00:00:00.000").unwrap(), 0);
        assert_eq!(
            parse_datetime("2024-02-29T12:34:56.789").unwrap(),
            1_709_210_096_789
        );
        assert_eq!(
            parse_datetime("2026-11-25T00:00:00").unwrap(),
            1_795_564_800_000
        );
        assert_eq!(parse_datetime("12345").unwrap(), 12345);
        assert!(parse_datetime("2024-13-01T00:00:00").is_err());
        assert!(parse_datetime("yesterday").is_err());
    }
}
