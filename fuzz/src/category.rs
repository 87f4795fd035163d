//! `category`: arbitrary text into every text parser the crate has: `Category`,
//! `SystemPresence`, `FeedId` and `DefinitionId` (`FromStr`), `SourceId::new`, and the serde
//! forms of those and of `Cursor`, `Activity`, `SetMode` and `FullReason`.
//!
//! Each must return the value or its one error variant, never panic; a value prints as text
//! that parses back to it; what a parser accepts is exactly what its docs say (any ASCII case of
//! the names, 16 hex digits, 1 to 128 characters); an error echoes at most 64 characters of the
//! input; and the serde form of each agrees with its `FromStr`.

use presence_store::{
    Activity, Category, Cursor, DefinitionId, Error, FeedId, FullReason, SetMode, SourceId,
    SystemPresence,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// How many characters of the input an error echoes.
const ECHO: usize = 64;

/// Checks the input (lossy UTF-8) with every parser, and the raw bytes as JSON.
pub fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let s = text.as_ref();
    let echo: String = s.chars().take(ECHO).collect();
    let chars = s.chars().count();

    match s.parse::<Category>() {
        Ok(c) => {
            assert!(c.as_str().eq_ignore_ascii_case(s), "{s:?} -> {c}");
            assert_eq!(c.to_string().parse::<Category>(), Ok(c));
            assert_eq!(s.to_ascii_lowercase().parse::<Category>(), Ok(c));
        }
        Err(Error::UnknownCategory { value }) => {
            assert_eq!(value, echo);
            assert!(!Category::ALL
                .iter()
                .any(|c| c.as_str().eq_ignore_ascii_case(s)));
        }
        Err(e) => panic!("{s:?}: {e:?}"),
    }

    match s.parse::<SystemPresence>() {
        Ok(p) => {
            assert!(
                p.as_str().eq_ignore_ascii_case(s) || p.display_name().eq_ignore_ascii_case(s),
                "{s:?} -> {p}"
            );
            assert_eq!(p.to_string().parse::<SystemPresence>(), Ok(p));
            assert_eq!(p.display_name().parse::<SystemPresence>(), Ok(p));
        }
        Err(Error::UnknownSystemPresence { value }) => assert_eq!(value, echo),
        Err(e) => panic!("{s:?}: {e:?}"),
    }

    match s.parse::<FeedId>() {
        Ok(f) => {
            let printed = f.to_string();
            assert_eq!(s.len(), 16, "{s:?} -> {printed}");
            assert_eq!(printed.len(), 16);
            assert!(printed
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
            assert_eq!(printed.parse::<FeedId>(), Ok(f));
        }
        Err(Error::InvalidFeedId { feed }) => assert_eq!(feed, echo),
        Err(e) => panic!("{s:?}: {e:?}"),
    }

    let definition = s.parse::<DefinitionId>();
    match &definition {
        Ok(d) => {
            assert_eq!(d.as_str(), s);
            assert_eq!(d.to_string(), s);
            assert!((1..=DefinitionId::MAX_LEN).contains(&chars));
            assert_eq!(DefinitionId::new(s).as_ref(), Ok(d));
        }
        Err(Error::InvalidDefinitionId { .. }) => {
            assert!(chars == 0 || chars > DefinitionId::MAX_LEN, "{s:?} refused");
        }
        Err(e) => panic!("{s:?}: {e:?}"),
    }

    let source = SourceId::new(s);
    match &source {
        Ok(id) => {
            // Any case of the default's id is the default, spelled as it spells itself.
            let spelled = if id.is_default() { "PURECLOUD" } else { s };
            assert_eq!(id.as_str(), spelled);
            assert_eq!(id.to_string(), spelled);
            assert!((1..=128).contains(&chars));
            assert_eq!(
                id.is_default(),
                s.eq_ignore_ascii_case(SourceId::DEFAULT.as_str())
            );
        }
        Err(Error::InvalidSourceId { .. }) => {
            assert!(chars == 0 || chars > 128, "{s:?} refused");
        }
        Err(e) => panic!("{s:?}: {e:?}"),
    }

    // Every error prints a message a person can act on.
    for e in [
        s.parse::<Category>().err(),
        s.parse::<SystemPresence>().err(),
        s.parse::<FeedId>().err(),
        s.parse::<Cursor>().err(),
        definition.clone().err(),
        source.clone().err(),
    ]
    .into_iter()
    .flatten()
    {
        assert!(!e.to_string().is_empty());
    }

    // The serde forms: a JSON string of the input.
    let json = serde_json::to_string(s).expect("a string serializes");
    match from_json::<Category>(&json) {
        // Serde takes the exact spelling only.
        Some(c) => assert_eq!(c.as_str(), s),
        None => assert!(Category::ALL.iter().all(|c| c.as_str() != s)),
    }
    if let Some(p) = from_json::<SystemPresence>(&json) {
        assert_eq!(p.as_str(), s);
    }
    assert_eq!(from_json::<FeedId>(&json), s.parse::<FeedId>().ok());
    assert_eq!(from_json::<Cursor>(&json), s.parse::<Cursor>().ok());
    assert_eq!(from_json::<DefinitionId>(&json), definition.ok());
    assert_eq!(from_json::<SourceId>(&json), source.ok());
    from_json::<Activity>(&json);
    from_json::<SetMode>(&json);
    from_json::<FullReason>(&json);

    // The raw bytes as JSON of any shape.
    let _ = serde_json::from_slice::<Category>(data);
    let _ = serde_json::from_slice::<Cursor>(data);
    let _ = serde_json::from_slice::<Vec<(FeedId, DefinitionId, SourceId)>>(data);
}

/// The value `json` deserializes to, if any; a value serializes back to what it came from.
fn from_json<T>(json: &str) -> Option<T>
where
    T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug,
{
    let value: T = serde_json::from_str(json).ok()?;
    let again = serde_json::to_string(&value).expect("a value serializes");
    assert_eq!(
        serde_json::from_str::<T>(&again).ok().as_ref(),
        Some(&value),
        "{json} -> {value:?} -> {again}"
    );
    Some(value)
}
