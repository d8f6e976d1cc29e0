//! Embedded name lists, written for this generator: common names of the communities of urban
//! England, including hyphenated and apostrophised surnames and names outside ASCII. The lists
//! are modest on purpose; variety comes from combining them.

/// One group of names that tend to occur together.
pub struct NameGroup {
    /// Relative frequency among patients.
    pub weight: f64,
    pub female_older: &'static [&'static str],
    pub female_younger: &'static [&'static str],
    pub male_older: &'static [&'static str],
    pub male_younger: &'static [&'static str],
    pub surnames: &'static [&'static str],
    /// Chance of a hyphenated (double-barrelled) surname.
    pub hyphenated: f64,
}

pub static GROUPS: &[NameGroup] = &[
    // English, Scottish, Welsh and Irish.
    NameGroup {
        weight: 68.0,
        female_older: &[
            "Margaret",
            "Patricia",
            "Susan",
            "Christine",
            "Janet",
            "Elizabeth",
            "Linda",
            "Carol",
            "Barbara",
            "Jean",
            "Pauline",
            "Sandra",
            "Maureen",
            "Kathleen",
            "Jacqueline",
            "Gillian",
            "Julie",
            "Karen",
            "Alison",
            "Helen",
            "Sarah",
            "Joanne",
            "Michelle",
            "Siân",
            "Bronwen",
            "Eileen",
            "Siobhan",
            "Deborah",
            "Angela",
            "Wendy",
        ],
        female_younger: &[
            "Olivia",
            "Amelia",
            "Isla",
            "Ava",
            "Emily",
            "Sophie",
            "Grace",
            "Lily",
            "Freya",
            "Chloë",
            "Zoë",
            "Ella",
            "Poppy",
            "Evie",
            "Jessica",
            "Charlotte",
            "Hannah",
            "Megan",
            "Niamh",
            "Caitlin",
            "Ffion",
            "Rhiannon",
            "Amy",
            "Lauren",
            "Ellie",
            "Holly",
            "Rosie",
            "Matilda",
            "Phoebe",
            "Eloise",
        ],
        male_older: &[
            "John",
            "David",
            "Michael",
            "Peter",
            "Robert",
            "Paul",
            "Richard",
            "Stephen",
            "Anthony",
            "Brian",
            "Keith",
            "Alan",
            "Christopher",
            "Mark",
            "Ian",
            "Andrew",
            "Graham",
            "Kevin",
            "Gareth",
            "Dafydd",
            "Colin",
            "Trevor",
            "Malcolm",
            "Derek",
            "Seán",
            "Declan",
            "Gary",
            "Neil",
            "Philip",
            "Terence",
        ],
        male_younger: &[
            "Oliver", "George", "Harry", "Noah", "Jack", "Leo", "Arthur", "Oscar", "Charlie",
            "Freddie", "Alfie", "Theo", "Thomas", "James", "William", "Joshua", "Daniel", "Ryan",
            "Callum", "Liam", "Rhys", "Owen", "Lewis", "Jake", "Connor", "Ethan", "Finley",
            "Archie", "Reuben", "Tomás",
        ],
        surnames: &[
            "Smith",
            "Jones",
            "Taylor",
            "Brown",
            "Williams",
            "Wilson",
            "Johnson",
            "Davies",
            "Robinson",
            "Wright",
            "Thompson",
            "Evans",
            "Walker",
            "White",
            "Roberts",
            "Green",
            "Hall",
            "Wood",
            "Jackson",
            "Clarke",
            "Hughes",
            "Edwards",
            "Lewis",
            "Harris",
            "Turner",
            "Hill",
            "Cooper",
            "Ward",
            "Morris",
            "Moore",
            "Clark",
            "Lee",
            "King",
            "Baker",
            "Harrison",
            "Morgan",
            "Allen",
            "Scott",
            "Young",
            "Mitchell",
            "Shaw",
            "Atkinson",
            "Holmes",
            "Sutcliffe",
            "Ackroyd",
            "Pickles",
            "Greenwood",
            "Barraclough",
            "Lockwood",
            "O'Neill",
            "O'Brien",
            "O'Connor",
            "O'Sullivan",
            "McDonald",
            "McCarthy",
            "MacLeod",
            "Murphy",
            "Kelly",
            "Byrne",
            "Doyle",
            "Fitzgerald",
            "ap Rhys",
            "Llewellyn",
            "Pryce",
        ],
        hyphenated: 0.025,
    },
    // South Asian heritage.
    NameGroup {
        weight: 11.0,
        female_older: &[
            "Shabana",
            "Nasreen",
            "Parveen",
            "Rukhsana",
            "Kulwinder",
            "Jaswinder",
            "Sunita",
            "Meena",
            "Anita",
            "Rekha",
            "Farzana",
            "Shahida",
            "Bilquis",
        ],
        female_younger: &[
            "Aisha", "Maryam", "Zara", "Fatima", "Hafsa", "Anaya", "Priya", "Simran", "Amrit",
            "Noor", "Inaya", "Khadija", "Safiya", "Aaliyah",
        ],
        male_older: &[
            "Mohammed", "Abdul", "Mohammad", "Tariq", "Khalid", "Imran", "Gurdev", "Harjit",
            "Rajesh", "Sanjay", "Arif", "Nadeem", "Zahid",
        ],
        male_younger: &[
            "Muhammad", "Ibrahim", "Yusuf", "Ayaan", "Zain", "Hamza", "Arjun", "Rohan", "Harjot",
            "Eesa", "Musa", "Ali", "Adam", "Rayyan",
        ],
        surnames: &[
            "Khan",
            "Hussain",
            "Ahmed",
            "Ali",
            "Akhtar",
            "Iqbal",
            "Mahmood",
            "Begum",
            "Patel",
            "Shah",
            "Singh",
            "Kaur",
            "Sharma",
            "Chaudhry",
            "Rehman",
            "Bibi",
            "Qureshi",
            "Malik",
            "Gill",
            "Sandhu",
            "D'Souza",
            "D'Costa",
            "Fernandes",
            "Uddin",
            "Miah",
            "Rahman",
        ],
        hyphenated: 0.005,
    },
    // Polish and other Central/Eastern European.
    NameGroup {
        weight: 5.0,
        female_older: &[
            "Małgorzata",
            "Agnieszka",
            "Katarzyna",
            "Ewa",
            "Grażyna",
            "Jolanta",
            "Renata",
            "Dagmar",
            "Ilona",
        ],
        female_younger: &[
            "Zuzanna",
            "Julia",
            "Maja",
            "Natalia",
            "Wiktoria",
            "Oliwia",
            "Lena",
            "Alicja",
            "Kateřina",
            "Ioana",
        ],
        male_older: &[
            "Krzysztof",
            "Andrzej",
            "Tomasz",
            "Piotr",
            "Marek",
            "Grzegorz",
            "Jarosław",
            "Pavel",
            "Mihai",
        ],
        male_younger: &[
            "Łukasz", "Jakub", "Kacper", "Szymon", "Mateusz", "Filip", "Antoni", "Dawid", "Ondřej",
            "Andrei",
        ],
        surnames: &[
            "Nowak",
            "Kowalski",
            "Kowalska",
            "Wiśniewski",
            "Wiśniewska",
            "Wójcik",
            "Kamiński",
            "Lewandowski",
            "Zieliński",
            "Szymańska",
            "Dąbrowski",
            "Kozłowski",
            "Mazur",
            "Jankowski",
            "Dvořák",
            "Novák",
            "Popescu",
            "Ionescu",
            "Horváth",
            "Petrauskas",
        ],
        hyphenated: 0.01,
    },
    // Black African and Caribbean heritage.
    NameGroup {
        weight: 6.0,
        female_older: &[
            "Grace", "Comfort", "Blessing", "Patience", "Hyacinth", "Marcia", "Beverley", "Adaeze",
            "Folasade",
        ],
        female_younger: &[
            "Amara", "Chioma", "Zainab", "Temitope", "Nia", "Imani", "Kemi", "Adeola", "Ayomide",
            "Precious", "Tiana",
        ],
        male_older: &[
            "Emmanuel",
            "Samuel",
            "Kwame",
            "Oluwaseun",
            "Chinedu",
            "Winston",
            "Delroy",
            "Errol",
            "Tendai",
        ],
        male_younger: &[
            "David", "Daniel", "Tobi", "Kofi", "Chidi", "Jayden", "Malachi", "Elijah", "Tyrese",
            "Femi", "Kayode",
        ],
        surnames: &[
            "Okafor", "Adeyemi", "Mensah", "Boateng", "Okonkwo", "Adebayo", "Oyelaran", "Nwosu",
            "Mwangi", "Osei", "Asante", "Campbell", "Francis", "Thomas", "Grant", "Bailey",
            "Dacres", "Mukherji", "Abdi", "Warsame", "Mohamud",
        ],
        hyphenated: 0.01,
    },
    // Western and Southern European, Latin American.
    NameGroup {
        weight: 4.0,
        female_older: &[
            "María",
            "Ana",
            "Isabel",
            "Françoise",
            "Brigitte",
            "Giovanna",
            "Ursula",
            "Inês",
            "Maria José",
        ],
        female_younger: &[
            "Lucía", "Sofía", "Chiara", "Giulia", "Léa", "Inès", "Mia", "Björk", "Beatriz",
            "Noémie",
        ],
        male_older: &[
            "José",
            "Antonio",
            "Manuel",
            "François",
            "Jürgen",
            "Giuseppe",
            "João",
            "Søren",
            "Jean-Pierre",
        ],
        male_younger: &[
            "Mateo", "Hugo", "Lorenzo", "Matteo", "Théo", "Lukas", "Gonçalo", "Iñaki", "Joaquín",
            "Niklas",
        ],
        surnames: &[
            "García",
            "Fernández",
            "Nuñez",
            "Rodríguez",
            "Gonçalves",
            "Gomes",
            "Rossi",
            "Russo",
            "Esposito",
            "Müller",
            "Schröder",
            "Dubois",
            "Lefèvre",
            "Da Silva",
            "de la Cruz",
            "van der Berg",
            "Sørensen",
            "Ólafsdóttir",
            "Jiménez",
            "Peña",
        ],
        hyphenated: 0.05,
    },
    // East and South-East Asian heritage.
    NameGroup {
        weight: 2.5,
        female_older: &["Mei", "Li Na", "Xiu", "Yuko", "Thi Lan", "Siew Ling"],
        female_younger: &["Emily", "Chloe", "Jia", "Yuna", "Hana", "Linh", "Ying"],
        male_older: &["Wei", "Jian", "Hiroshi", "Van Minh", "Kok Wai", "Chun"],
        male_younger: &["Ethan", "Ryan", "Haoran", "Kenji", "Minh", "Jun"],
        surnames: &[
            "Chen", "Wong", "Li", "Zhang", "Wang", "Liu", "Lam", "Cheung", "Nguyen", "Tran",
            "Tanaka", "Sato", "Kim", "Park",
        ],
        hyphenated: 0.0,
    },
    // Middle Eastern and North African heritage.
    NameGroup {
        weight: 3.5,
        female_older: &["Leila", "Samira", "Nadia", "Fatemeh", "Rania", "Hoda"],
        female_younger: &["Yasmin", "Layla", "Sara", "Mariam", "Lina", "Dalia", "Nour"],
        male_older: &["Ahmad", "Hassan", "Karim", "Mahmoud", "Reza", "Omar"],
        male_younger: &["Omar", "Youssef", "Adam", "Karim", "Ilyas", "Zakariya"],
        surnames: &[
            "Al-Sayed",
            "El-Masri",
            "Haddad",
            "Karimi",
            "Hosseini",
            "Abboud",
            "Nasser",
            "Yilmaz",
            "Demir",
            "Öztürk",
            "Şahin",
            "Al-Rashid",
            "Mansour",
        ],
        hyphenated: 0.0,
    },
];

/// Titles for adults by sex; `Mx` appears where gender is recorded as other.
pub static TITLES_FEMALE: &[(&str, f64)] =
    &[("Mrs", 45.0), ("Ms", 25.0), ("Miss", 25.0), ("Dr", 2.0)];
pub static TITLES_MALE: &[(&str, f64)] = &[("Mr", 97.0), ("Dr", 3.0)];

/// Folds a name to lower-case ASCII letters for an e-mail address (`Zoë O'Neill` →
/// `zoe`, `oneill`); characters with no plain-letter equivalent are dropped.
pub fn ascii_fold(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        let folded = match c {
            'a'..='z' | '0'..='9' => Some(c),
            'A'..='Z' => Some(c.to_ascii_lowercase()),
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ą' | 'À' | 'Á' | 'Â' | 'Ä' => Some('a'),
            'ç' | 'ć' | 'č' | 'Ç' | 'Č' => Some('c'),
            'ď' => Some('d'),
            'è' | 'é' | 'ê' | 'ë' | 'ę' | 'ě' | 'É' | 'È' => Some('e'),
            'ì' | 'í' | 'î' | 'ï' | 'Í' => Some('i'),
            'ł' | 'Ł' => Some('l'),
            'ñ' | 'ń' | 'ň' | 'Ñ' => Some('n'),
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'Ó' | 'Ö' | 'Ø' => Some('o'),
            'ř' => Some('r'),
            'ś' | 'š' | 'ş' | 'Ś' | 'Š' | 'Ş' => Some('s'),
            'ù' | 'ú' | 'û' | 'ü' | 'ů' | 'Ü' => Some('u'),
            'ý' => Some('y'),
            'ź' | 'ż' | 'ž' | 'Ż' | 'Ž' => Some('z'),
            _ => None,
        };
        if let Some(f) = folded {
            out.push(f);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_names_for_email() {
        assert_eq!(ascii_fold("Zoë"), "zoe");
        assert_eq!(ascii_fold("O'Neill"), "oneill");
        assert_eq!(ascii_fold("Łukasz"), "lukasz");
        assert_eq!(ascii_fold("Nuñez"), "nunez");
        assert_eq!(ascii_fold("Siân"), "sian");
    }

    #[test]
    fn the_lists_include_the_awkward_cases() {
        let all: Vec<&str> = GROUPS
            .iter()
            .flat_map(|g| {
                g.surnames
                    .iter()
                    .chain(g.female_younger)
                    .chain(g.female_older)
                    .chain(g.male_younger)
                    .chain(g.male_older)
            })
            .copied()
            .collect();
        for name in ["O'Neill", "D'Souza", "Zoë", "Siân", "Łukasz", "Nuñez"] {
            assert!(all.contains(&name), "{name}");
        }
    }
}
