//! Word and name lists of the synthetic generators, written for this project (not copied
//! from `wonderwords` or OpenCompass's `names.json`): plain common English words and common
//! given names and surnames.

/// Adjectives for RULER-style `adjective-noun` keys and the common-words list.
pub const ADJECTIVES: &str = "able active afraid agile amber ancient angry anxious ashamed \
awake bare basic bitter blank bold brave brief bright broad brown busy calm careful cheap \
clean clear clever close cloudy cold cool crisp cruel curious damp dark deep dense dizzy dry \
dull dusty eager early easy empty equal even exact faint fair false famous fancy fast fierce \
final fine firm flat fond formal fresh friendly funny gentle giant glad golden good grand \
gray great green grim happy hard harsh heavy hidden high hollow honest huge humble hungry \
icy idle jolly keen kind large late lazy level light little lively local lonely long loud \
lovely loyal lucky mad main major mild minor modern moist narrow neat nervous new nice noble \
noisy odd old open orange pale patient plain polite poor proud pure purple quick quiet rapid \
rare raw ready real red rich right rigid ripe rough round royal rude rusty sad safe salty \
sandy scarce sharp shiny short shy silent silly simple sleek slim slow small smart smooth \
soft solid sour spare steady steep sticky stiff still strange strict strong sturdy subtle \
sudden sunny super sweet swift tall tame tender thick thin tidy tiny tired tough true ugly \
upper urban usual vague vast vivid warm weak weary wet white whole wide wild wise witty \
wooden young yellow zealous";

/// Nouns for RULER-style keys and the common-words list.
pub const NOUNS: &str = "acorn actor airport album anchor angle animal ankle answer apple \
apron arch arm army arrow artist attic aunt autumn avenue baby badge bag bakery ball balloon \
band bank barn basket bath beach bead beam bean bear bed bee bell belt bench berry bicycle \
bird blanket boat bone book boot bottle bowl box branch bread brick bridge brush bubble \
bucket butter button cabin cable cake camera camp candle canoe canvas cap car card carpet \
cart castle cat cave cellar chain chair chalk cheese cherry chest chicken chimney church \
circle city clock cloud coast coat coffee coin collar comb comet copper corn cottage cotton \
crayon creek crown cup curtain cushion daisy desk diamond dinner dog doll door dragon drawer \
dream drum duck eagle earth egg elbow engine falcon farm feather fence field finger fire fish \
flag flame flower flute fog forest fork fountain fox frog garden gate ghost gift glass glove \
goat gold grape grass guitar hammer harbor hat hawk heart helmet hill honey horse house \
island jacket jar jelly jewel kettle key kite kitten knife ladder lake lamp lantern leaf \
lemon letter library lily lion lizard lock magnet map marble market meadow melon mirror \
monkey moon mountain mouse mug nail needle nest net notebook ocean office onion orchard \
otter owl paddle paint palace pan paper parrot path peach pearl pebble pencil pepper piano \
pillow pine planet plate pocket pond potato puddle pumpkin puppet quilt rabbit radio rain \
ribbon river road robin rock roof rope rose sail salad sand scarf school seed shadow shell \
ship shoe shovel silver sky sled snail snow soap sock spoon spring square star station stone \
storm stove street sugar sun swan table tail teapot tent thunder ticket tiger tomato tower \
town toy train tree truck tulip tunnel turtle umbrella valley vase village violin wagon \
wall wallet whale wheel whistle window wing winter wolf wood yard zebra";

/// Verbs, added to the common-words list as upstream adds `wonderwords`' verbs.
pub const VERBS: &str = "accept add admire allow answer arrive ask bake balance bathe \
beg behave bless boil borrow bounce breathe brush build bury call carry chase cheer chew \
choose clap climb collect comb cough count crawl cross cry dance deliver dig divide drag \
draw dress drift drink drive drop dry earn eat enjoy enter escape explain fetch fill find \
fix float fold follow gather glow grab greet grin guard guess hang help hide hike hop hug \
hum hunt hurry invent invite jog juggle jump kick kneel knit knock laugh lead lean lift \
listen marry melt mend mix move nod obey offer open paint pass pause plant play polish pour \
pray print pull push race rain reach read relax remain repair rest ride ring roar roll row \
rub run rush sail scrub search serve sew shake shine shout sing sip sit skate ski sleep \
slide smile sneeze sniff snore spell spill splash stare steer stir stretch study swim swing \
talk teach tease thank throw tickle tie travel trust tug type visit wade wait walk wander \
wash watch wave weave whisper win wink wish wonder work worry write yawn yell zoom";

/// Given names for NeedleBench-style person names.
pub const GIVEN_NAMES: &str = "Aaron Abigail Adam Alice Amanda Amy Andrew Angela Anna \
Anthony Barbara Benjamin Beth Brandon Brian Carl Carol Caroline Charles Christine Daniel \
David Deborah Dennis Diana Donald Dorothy Edward Elaine Elizabeth Emily Emma Eric Ethan \
Frances Frank Gary George Grace Gregory Hannah Harold Heather Helen Henry Isaac Jack Jacob \
James Janet Jason Jeffrey Jennifer Jessica Joan John Jonathan Joseph Joyce Judith Julia \
Justin Karen Katherine Keith Kelly Kenneth Kevin Laura Lauren Lawrence Linda Lisa Louis \
Lucy Margaret Maria Mark Martha Mary Matthew Megan Melissa Michael Michelle Nancy Nathan \
Nicholas Nicole Olivia Patricia Patrick Paul Peter Philip Rachel Raymond Rebecca Richard \
Robert Roger Ronald Rose Ruth Ryan Samantha Samuel Sandra Sarah Scott Sharon Stephen Susan \
Teresa Thomas Timothy Victoria Vincent Walter William Zachary";

/// Surnames for NeedleBench-style person names.
pub const SURNAMES: &str = "Adams Allen Anderson Bailey Baker Barnes Bell Bennett Brooks \
Brown Butler Campbell Carter Clark Collins Cook Cooper Cox Davis Edwards Evans Fisher \
Foster Garcia Gibson Gonzalez Gray Green Griffin Hall Harris Hayes Henderson Hill Howard \
Hughes Jackson James Jenkins Johnson Jones Kelly King Lee Lewis Long Lopez Marshall Martin \
Miller Mitchell Moore Morgan Morris Murphy Myers Nelson Parker Perry Peterson Phillips \
Powell Price Reed Richardson Rivera Roberts Robinson Rogers Ross Russell Sanders Scott \
Simmons Smith Stewart Sullivan Taylor Thomas Thompson Turner Walker Ward Watson White \
Williams Wilson Wood Wright Young";

/// The words of a list, in the order written.
pub fn list(words: &'static str) -> Vec<&'static str> {
    words.split_whitespace().collect()
}

/// A pronounceable pseudo-word for index `i` (consonant–vowel syllables, at least three),
/// distinct for distinct `i`; used once the written lists run out.
pub fn pseudo_word(i: usize) -> String {
    const CONSONANTS: &[u8] = b"bdfgklmnprstvz";
    const VOWELS: &[u8] = b"aeiou";
    let per = CONSONANTS.len() * VOWELS.len();
    let mut n = i;
    let mut word = String::new();
    for syllable in 0.. {
        let s = n % per;
        word.push(CONSONANTS[s / VOWELS.len()] as char);
        word.push(VOWELS[s % VOWELS.len()] as char);
        n /= per;
        if n == 0 && syllable >= 2 {
            break;
        }
    }
    word
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn lists_are_distinct_and_sizable() {
        for (words, at_least) in [
            (ADJECTIVES, 200),
            (NOUNS, 300),
            (VERBS, 180),
            (GIVEN_NAMES, 120),
            (SURNAMES, 90),
        ] {
            let l = list(words);
            let set: HashSet<_> = l.iter().collect();
            assert_eq!(set.len(), l.len(), "duplicate in a list");
            assert!(l.len() >= at_least, "{}", l.len());
        }
        let pseudo: HashSet<String> = (0..20_000).map(pseudo_word).collect();
        assert_eq!(pseudo.len(), 20_000);
    }
}
