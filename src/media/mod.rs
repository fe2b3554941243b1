//! Media: what counts as a photo or video, skip rules, capture dates, pairs, destination layouts.
