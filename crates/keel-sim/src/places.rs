//! Places: one urban area per PCN, its postcode districts and neighbourhoods, street names,
//! and telephone numbers from Ofcom's ranges reserved for drama (never allocated to anyone).

use crate::rng::Rng;

#[derive(Debug)]
pub struct Area {
    pub key: &'static str,
    pub city: &'static str,
    /// Postcode outward codes (districts) of the area.
    pub outward: &'static [&'static str],
    pub neighbourhoods: &'static [&'static str],
    /// Ofcom drama landline block: the prefix before the last three digits, e.g. `0113 496 0`
    /// for 0113 496 0000–0999.
    pub landline_prefix: &'static str,
}

pub static AREAS: &[Area] = &[
    Area {
        key: "leeds",
        city: "Leeds",
        outward: &[
            "LS1", "LS2", "LS4", "LS5", "LS6", "LS7", "LS8", "LS9", "LS11", "LS12", "LS13", "LS16",
            "LS17", "LS28",
        ],
        neighbourhoods: &[
            "Headingley",
            "Chapeltown",
            "Harehills",
            "Beeston",
            "Armley",
            "Bramley",
            "Kirkstall",
            "Roundhay",
            "Meanwood",
            "Hyde Park",
            "Holbeck",
            "Seacroft",
        ],
        landline_prefix: "0113 496 0",
    },
    Area {
        key: "sheffield",
        city: "Sheffield",
        outward: &[
            "S1", "S2", "S3", "S5", "S6", "S7", "S8", "S10", "S11", "S17", "S20",
        ],
        neighbourhoods: &[
            "Walkley",
            "Hillsborough",
            "Sharrow",
            "Nether Edge",
            "Crookes",
            "Darnall",
            "Heeley",
            "Broomhill",
            "Firth Park",
            "Gleadless",
        ],
        landline_prefix: "0114 496 0",
    },
    Area {
        key: "bristol",
        city: "Bristol",
        outward: &[
            "BS1", "BS2", "BS3", "BS4", "BS5", "BS6", "BS7", "BS8", "BS9", "BS13", "BS16",
        ],
        neighbourhoods: &[
            "Bedminster",
            "Easton",
            "St Pauls",
            "Redland",
            "Southville",
            "Fishponds",
            "Knowle",
            "Clifton",
            "Horfield",
            "Lawrence Hill",
        ],
        landline_prefix: "0117 496 0",
    },
    Area {
        key: "manchester",
        city: "Manchester",
        outward: &[
            "M1", "M4", "M8", "M9", "M11", "M13", "M14", "M15", "M16", "M19", "M20", "M21",
        ],
        neighbourhoods: &[
            "Ancoats",
            "Moss Side",
            "Rusholme",
            "Levenshulme",
            "Didsbury",
            "Chorlton",
            "Gorton",
            "Longsight",
            "Cheetham Hill",
            "Hulme",
        ],
        landline_prefix: "0161 496 0",
    },
    Area {
        key: "nottingham",
        city: "Nottingham",
        outward: &[
            "NG1", "NG2", "NG3", "NG5", "NG6", "NG7", "NG8", "NG9", "NG11",
        ],
        neighbourhoods: &[
            "Sneinton",
            "Radford",
            "Lenton",
            "Bulwell",
            "Basford",
            "Clifton",
            "Carlton",
            "Sherwood",
            "Hyson Green",
        ],
        landline_prefix: "0115 496 0",
    },
    Area {
        key: "birmingham",
        city: "Birmingham",
        outward: &[
            "B5", "B6", "B8", "B10", "B11", "B12", "B13", "B14", "B15", "B17", "B29",
        ],
        neighbourhoods: &[
            "Sparkbrook",
            "Handsworth",
            "Erdington",
            "Moseley",
            "Kings Heath",
            "Digbeth",
            "Small Heath",
            "Selly Oak",
            "Aston",
            "Balsall Heath",
        ],
        landline_prefix: "0121 496 0",
    },
];

pub static STREETS: &[&str] = &[
    "Church Street",
    "Victoria Road",
    "Mill Lane",
    "Park Avenue",
    "Station Road",
    "High Street",
    "Chapel Lane",
    "Albert Terrace",
    "Queen Street",
    "Springfield Road",
    "Grange Avenue",
    "Oak Tree Drive",
    "Beech Grove",
    "Cemetery Road",
    "Railway Terrace",
    "Moor View",
    "Westfield Road",
    "Hawthorn Close",
    "Clarendon Road",
    "St John's Road",
    "Prince's Avenue",
    "Cliff Road",
    "Woodland Rise",
    "Brook Street",
    "Meadow Way",
    "Orchard Close",
    "Kingsway",
    "Alexandra Road",
    "Windsor Crescent",
    "Belle Vue Road",
    "Hollin Lane",
    "Cardigan Road",
    "Lady Pit Lane",
    "Shaw Lane",
    "Ash Grove",
    "Hyde Park Road",
    "Burley Road",
    "Stanmore Place",
    "Regent Street",
    "Well Lane",
    "Cross Flatts Grove",
    "Nursery Lane",
];

/// Letters used in the inward part of a postcode (C, I, K, M, O and V are never used there).
const INWARD_LETTERS: &[u8] = b"ABDEFGHJLNPQRSTUWXYZ";

/// A UK-format postcode in one of the area's districts, e.g. `LS6 4AP`.
pub fn postcode(rng: &mut Rng, area: &Area) -> String {
    let outward = rng.pick(area.outward);
    let digit = rng.below(10) as u8;
    let a = *rng.pick(INWARD_LETTERS);
    let b = *rng.pick(INWARD_LETTERS);
    let mut s = String::with_capacity(8);
    s.push_str(outward);
    s.push(' ');
    s.push((b'0' + digit) as char);
    s.push(a as char);
    s.push(b as char);
    s
}

/// A mobile number in Ofcom's drama range 07700 900000–900999.
pub fn mobile(rng: &mut Rng) -> String {
    format!("07700 900{:03}", rng.below(1000))
}

/// A landline number in the area's Ofcom drama range.
pub fn landline(rng: &mut Rng, area: &Area) -> String {
    format!("{}{:03}", area.landline_prefix, rng.below(1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postcodes_have_the_uk_shape() {
        let mut rng = Rng::derive(&[1]);
        for area in AREAS {
            for _ in 0..50 {
                let p = postcode(&mut rng, area);
                let (outward, inward) = p.split_once(' ').expect("space");
                assert!(area.outward.contains(&outward));
                let inward = inward.as_bytes();
                assert_eq!(inward.len(), 3);
                assert!(inward[0].is_ascii_digit());
                assert!(INWARD_LETTERS.contains(&inward[1]) && INWARD_LETTERS.contains(&inward[2]));
            }
        }
    }
}
