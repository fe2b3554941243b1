//! The command line: every command, flag and help text, in one clap definition from which
//! `--help`, the man page and shell completions are generated.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const AFTER_HELP: &str = "\
CARD and PHONE can be a directory (a mounted card or phone, or a folder), a disk image file
(with or without an MBR/GPT partition table), or a block device such as /dev/sdb or
/dev/mmcblk0 (read and written directly, no mounting needed).

Exit codes:
  0  everything was done
  1  finished, but some files were not done or problems were found (nothing was lost:
     every original not verified on the card is still in place); see the summary
  2  could not run: bad arguments, unreadable card or manifest, corrupt file system
  130 interrupted

Report bugs and ideas to the sdexport issue tracker.";

#[derive(Debug, Parser)]
#[command(
    name = "sdexport",
    version,
    about = "Move a phone's photos and contacts onto an SD card without losing anything, and prove it later",
    after_long_help = AFTER_HELP,
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Args, Clone)]
pub struct GlobalArgs {
    /// Print only errors (the exit code still tells what happened)
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Print one line per file
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// When to use colours: auto (a terminal and NO_COLOR unset), always, never
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "when")]
    pub color: ColorChoice,
    /// Never draw progress bars (they are drawn only on a terminal anyway)
    #[arg(long, global = true)]
    pub no_progress: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Args, Clone, Copy, Default)]
pub struct PartitionArg {
    /// Use partition N of a partitioned image or device (default: the first FAT partition)
    #[arg(long, value_name = "N")]
    pub partition: Option<u32>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Back up a phone to a card in one go: photos, videos, contacts, manifest, verified
    #[command(after_long_help = "Examples:
  Copy everything to a new card image, verify it, keep the phone as it is:
    sdexport backup /media/phone --to card.img --create-image 8G
  Move photos to a card in a reader (originals removed only once verified on the card):
    sdexport backup /media/phone --to /dev/sdb --move
  Add contact exports found elsewhere:
    sdexport backup /media/phone --to /media/card --contacts ~/Downloads/contacts.vcf")]
    Backup(BackupArgs),
    /// Copy (or --move) the phone's DCIM photos and videos to the card, verified
    #[command(after_long_help = "Examples:
  sdexport photos /media/phone --to /media/card
  sdexport photos /media/phone --to card.img --move
  sdexport photos /media/phone --to /dev/sdb --layout date --include Pictures/Screenshots
  sdexport photos /media/phone --to card.img --dry-run")]
    Photos(PhotosArgs),
    /// Write the phone's contact exports (.vcf, .csv) to the card as one clean .vcf
    #[command(after_long_help = "Examples:
  sdexport contacts contacts.vcf google.csv --to /media/card
  sdexport contacts /media/phone --to card.img --vcard 2.1
  sdexport contacts old.vcf --to card.img --output Contacts/family.vcf")]
    Contacts(ContactsArgs),
    /// Check every file on a card against its manifest (works on any laptop)
    #[command(after_long_help = "Examples:
  sdexport verify /media/card
  sdexport verify card.img --json
  Is everything in this folder safely on the card?
    sdexport verify /dev/sdb --against ~/Pictures/phone-DCIM

Exit codes: 0 all files ok; 1 problems found (missing, corrupt, size-changed or unknown
files, or with --against files not on the card); 2 the card or its manifest could not be
read. --json prints one document (schema 1); see docs/VERIFY.md.

Without sdexport: cd to the card's root and run `sha256sum -c SHA256SUMS` (Linux) or
`shasum -a 256 -c SHA256SUMS` (macOS).")]
    Verify(VerifyArgs),
    /// Create a new card image (or re-format a device) like a factory-fresh SD card
    #[command(after_long_help = "Examples:
  sdexport format card.img --size 256M
  sdexport format card.img --size 8G --mbr --label HOLIDAYS
  sdexport format card.img --size 32M --fat 16
  sdexport format /dev/sdb --mbr --force      (erases the whole card)")]
    Format(FormatArgs),
    /// Show what is on a card: partition table, FAT type, label, sizes, clean or dirty
    #[command(after_long_help = "Examples:
  sdexport info card.img
  sdexport info /dev/sdb --json")]
    Info(InfoArgs),
    /// List a directory on a card
    #[command(after_long_help = "Examples:
  sdexport ls card.img
  sdexport ls card.img DCIM/Camera -l
  sdexport ls /dev/sdb DCIM --json")]
    Ls(LsArgs),
    /// Copy a file or folder off a card
    #[command(after_long_help = "Examples:
  sdexport get card.img DCIM/Camera/IMG_0001.JPG .
  sdexport get card.img DCIM ./card-dcim
  sdexport get card.img contacts.vcf - | head")]
    Get(GetArgs),
    /// Test a card for fake capacity or failing flash, in its free space only
    #[command(
        after_long_help = "Writes a pattern over the card's free space (files already on the card are
not touched), reads it back past the host's caches, and removes it again. A counterfeit card
that wraps writes past its real capacity, or a failing card, shows up as blocks that read back
wrong. Exit 0: every byte read back right; 1: the card lost data (do not trust it).

Examples:
  sdexport probe /dev/sdb
  sdexport probe card.img --max 2G --json"
    )]
    Probe(ProbeArgs),
    /// Print shell completions (bash, zsh, fish, powershell, elvish)
    #[command(after_long_help = "Examples:
  sdexport completions bash > ~/.local/share/bash-completion/completions/sdexport
  sdexport completions zsh > ~/.zfunc/_sdexport")]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to stdout
    #[command(after_long_help = "Example:
  sdexport man > sdexport.1 && man ./sdexport.1")]
    Man,
}

#[derive(Debug, Args)]
pub struct FormatArgs {
    /// The image file to create, or a device to re-format (with --force)
    pub path: PathBuf,
    /// Size of a new image: 256M, 8G, …
    #[arg(long, value_parser = parse_size, value_name = "size")]
    pub size: Option<u64>,
    /// FAT variant (default: FAT32 from 64 MiB up, FAT16 or FAT12 below)
    #[arg(long, value_parser = ["12", "16", "32"], value_name = "bits")]
    pub fat: Option<String>,
    /// Volume label (up to 11 characters)
    #[arg(long, value_name = "name")]
    pub label: Option<String>,
    /// Write an MBR partition table with the partition at 4 MiB, like SD cards as sold
    #[arg(long)]
    pub mbr: bool,
    /// Erase an existing file or device
    #[arg(long)]
    pub force: bool,
    /// Print the result as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct InfoArgs {
    pub card: PathBuf,
    #[command(flatten)]
    pub partition: PartitionArg,
    /// Print the result as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    pub card: PathBuf,
    /// Directory on the card (default: the root)
    #[arg(default_value = "")]
    pub path: String,
    /// Long listing: size, modified time, name
    #[arg(short, long)]
    pub long: bool,
    /// List everything below PATH
    #[arg(short = 'R', long)]
    pub recursive: bool,
    #[command(flatten)]
    pub partition: PartitionArg,
    /// Print the listing as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    pub card: PathBuf,
    /// File or folder on the card
    pub path: String,
    /// Where to put it (default: the current directory); `-` writes a file to stdout
    pub dest: Option<PathBuf>,
    /// Replace existing local files
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub partition: PartitionArg,
}

#[derive(Debug, Args, Clone)]
pub struct PhotoOptions {
    /// Remove each original once its copy has been read back from the card and matches
    #[arg(long = "move")]
    pub move_files: bool,
    /// Where photos go on the card: keep (DCIM/<same folders>) or date (DCIM/YYYY/MM)
    #[arg(long, value_enum, default_value_t = LayoutArg::Keep)]
    pub layout: LayoutArg,
    /// Also take photos from this folder of the phone (repeatable), e.g. Pictures/Screenshots
    #[arg(long, value_name = "dir")]
    pub include: Vec<String>,
    /// Take every file, not only photos and videos
    #[arg(long)]
    pub all_files: bool,
    /// With --move on long runs: read back and release originals every SIZE (at least 1G)
    /// instead of only after the run's last write, so the phone gets space back as it goes.
    /// Only on a card that passed `sdexport probe` (a counterfeit card could overwrite a
    /// released batch with the same run's later writes); otherwise it is ignored, with a
    /// warning (docs/SAFETY.md)
    #[arg(long, value_parser = parse_batch, value_name = "size")]
    pub batch: Option<u64>,
    /// With --move: before the last copies are read back, write and delete this much filler
    /// so they are read from the card's flash, not from a write cache that a failing card
    /// may lose when pulled (docs/SAFETY.md). 0 turns it off
    #[arg(long, value_parser = parse_size, value_name = "size", default_value = "64M")]
    pub card_cache: u64,
    /// Show what would be done; write and remove nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Print a JSON summary on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LayoutArg {
    Keep,
    Date,
}

#[derive(Debug, Args)]
pub struct PhotosArgs {
    /// The phone (or a camera card, or a folder) with a DCIM folder
    pub phone: PathBuf,
    /// The card to copy to
    #[arg(long, value_name = "CARD")]
    pub to: PathBuf,
    #[command(flatten)]
    pub options: PhotoOptions,
    /// Partition of the card to use
    #[arg(long, value_name = "N")]
    pub partition: Option<u32>,
}

#[derive(Debug, Args)]
pub struct ContactsArgs {
    /// .vcf or .csv exports, or folders/cards to search for them
    #[arg(required = true)]
    pub sources: Vec<PathBuf>,
    /// The card to write to
    #[arg(long, value_name = "CARD")]
    pub to: PathBuf,
    /// vCard version to write (3.0 is read by every phone and desktop app)
    #[arg(long, value_parser = ["2.1", "3.0", "4.0"], default_value = "3.0", value_name = "version")]
    pub vcard: String,
    /// Path of the .vcf on the card
    #[arg(long, default_value = "contacts.vcf", value_name = "path")]
    pub output: String,
    /// Keep duplicate contacts as they are
    #[arg(long)]
    pub no_merge: bool,
    /// Show what would be written; write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Print a JSON summary on stdout
    #[arg(long)]
    pub json: bool,
    /// Partition of the card to use
    #[arg(long, value_name = "N")]
    pub partition: Option<u32>,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The phone's storage (a mounted phone or a folder copied off it)
    pub phone: PathBuf,
    /// The card to back up to
    #[arg(long, value_name = "CARD")]
    pub to: PathBuf,
    /// Create CARD as a new FAT32 image of this size first (refuses an existing path)
    #[arg(long, value_parser = parse_size, value_name = "size")]
    pub create_image: Option<u64>,
    /// More contact exports to include (.vcf/.csv)
    #[arg(long, value_name = "file")]
    pub contacts: Vec<PathBuf>,
    #[command(flatten)]
    pub options: PhotoOptions,
    /// Partition of the card to use
    #[arg(long, value_name = "N")]
    pub partition: Option<u32>,
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    pub card: PathBuf,
    /// Test at most this much of the free space (default: all of it), e.g. 2G
    #[arg(long, value_parser = parse_size, value_name = "size")]
    pub max: Option<u64>,
    #[command(flatten)]
    pub partition: PartitionArg,
    /// Print the result as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    pub card: PathBuf,
    /// Also check that every file in this folder (or card image) is on the card, by content, anywhere
    #[arg(long, value_name = "dir")]
    pub against: Option<PathBuf>,
    #[command(flatten)]
    pub partition: PartitionArg,
    /// Print the report as JSON
    #[arg(long)]
    pub json: bool,
}

fn parse_batch(s: &str) -> Result<u64, String> {
    let n = parse_size(s)?;
    if n < 1 << 30 {
        return Err("a batch must be at least 1G: a batch is read back only after more than any card's cache has been written after it".into());
    }
    Ok(n)
}

fn parse_size(s: &str) -> Result<u64, String> {
    sdexport::format::parse_size(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn move_flag_parses() {
        let cli =
            Cli::try_parse_from(["sdexport", "photos", "phone", "--to", "card.img", "--move"])
                .unwrap();
        match cli.command {
            Command::Photos(p) => assert!(p.options.move_files),
            other => panic!("{other:?}"),
        }
    }
}
