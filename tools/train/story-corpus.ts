import { seededRandom } from '../../src/gguf/seeded-random.ts';

/**
 * A seeded grammar of short children's stories. The text is produced entirely by this file, so a model
 * trained on it can be redistributed under the project's MIT licence with no third-party data involved.
 * Each story keeps one hero, one friend, one place and one problem from start to end, so a model that
 * learns it has to carry names and objects across sentences, not just string words together.
 */

interface Character {
  name: string;
  kind: string;
  he: string;
  him: string;
  his: string;
}

const HEROES: ReadonlyArray<readonly [string, string, 'he' | 'she']> = [
  ['Lily', 'girl', 'she'],
  ['Tom', 'boy', 'he'],
  ['Mia', 'girl', 'she'],
  ['Ben', 'boy', 'he'],
  ['Anna', 'girl', 'she'],
  ['Max', 'boy', 'he'],
  ['Sara', 'girl', 'she'],
  ['Leo', 'boy', 'he'],
  ['Zoe', 'girl', 'she'],
  ['Sam', 'boy', 'he'],
  ['Pip', 'mouse', 'he'],
  ['Rosie', 'rabbit', 'she'],
  ['Finn', 'fox', 'he'],
  ['Daisy', 'duck', 'she'],
  ['Bruno', 'bear', 'he'],
  ['Luna', 'cat', 'she'],
  ['Toby', 'dog', 'he'],
  ['Ella', 'frog', 'she'],
  ['Ollie', 'owl', 'he'],
  ['Ruby', 'bird', 'she'],
  ['Jack', 'boy', 'he'],
  ['Emma', 'girl', 'she'],
  ['Nina', 'turtle', 'she'],
  ['Oscar', 'pig', 'he'],
  ['Molly', 'cow', 'she'],
  ['Kit', 'kitten', 'he'],
  ['Bella', 'puppy', 'she'],
  ['Henry', 'horse', 'he'],
  ['Lucy', 'lamb', 'she'],
  ['Milo', 'monkey', 'he'],
];

const TRAITS = [
  'little',
  'kind',
  'brave',
  'curious',
  'happy',
  'shy',
  'clever',
  'funny',
  'gentle',
  'busy',
  'sleepy',
  'small',
];

const PLACES: ReadonlyArray<readonly [string, string]> = [
  ['a small house', 'the house'],
  ['a big forest', 'the forest'],
  ['a sunny farm', 'the farm'],
  ['a quiet village', 'the village'],
  ['a green garden', 'the garden'],
  ['a tall tree', 'the tree'],
  ['a little town', 'the town'],
  ['a warm cave', 'the cave'],
  ['a blue pond', 'the pond'],
  ['a busy park', 'the park'],
  ['a sandy beach', 'the beach'],
  ['a snowy hill', 'the hill'],
];

/** [object, adjective, what one does with it] */
const THINGS: ReadonlyArray<readonly [string, string, string]> = [
  ['ball', 'red', 'play with'],
  ['kite', 'yellow', 'fly'],
  ['hat', 'blue', 'wear'],
  ['book', 'old', 'read'],
  ['boat', 'little', 'sail'],
  ['drum', 'loud', 'play'],
  ['cake', 'sweet', 'share'],
  ['flower', 'pink', 'give to Mom'],
  ['shell', 'shiny', 'keep'],
  ['box', 'big', 'open'],
  ['toy car', 'fast', 'race'],
  ['blanket', 'soft', 'sleep under'],
  ['key', 'golden', 'keep safe'],
  ['map', 'secret', 'follow'],
  ['bell', 'silver', 'ring'],
  ['cup', 'green', 'fill with tea'],
];

const FEELINGS_BAD = ['sad', 'worried', 'scared', 'upset', 'lonely'];
const FEELINGS_GOOD = ['happy', 'glad', 'proud', 'excited', 'thankful'];
const WEATHER = ['sunny', 'rainy', 'windy', 'cold', 'warm', 'bright', 'cloudy'];
const TIMES = ['One day', 'One morning', 'One sunny day', 'One evening', 'The next day', 'Later that day'];
const SOUNDS = ['a loud noise', 'a soft sound', 'a funny song', 'a little cry', 'a strange buzz'];
const HIDING = [
  'under the bed',
  'behind a big rock',
  'in the tall grass',
  'up in a tree',
  'under a leaf',
  'near the old fence',
  'inside a hole',
];
const FOODS = ['apples', 'cookies', 'soup', 'bread', 'berries', 'carrots', 'milk', 'cheese'];

type Rand = () => number;
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;
const cap = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);
const an = (word: string) => (/^[aeiou]/.test(word) ? `an ${word}` : `a ${word}`);

function character(r: Rand, avoid?: string): Character {
  let hero = pick(r, HEROES);
  while (hero[0] === avoid) hero = pick(r, HEROES);
  const [name, kind, he] = hero;
  return he === 'he'
    ? { name, kind, he: 'he', him: 'him', his: 'his' }
    : { name, kind, he: 'she', him: 'her', his: 'her' };
}

/** One story: an opening, a problem, a friend, dialogue, a resolution and an ending, with random variations. */
export function generateStory(r: Rand): string {
  const hero = character(r);
  const friend = character(r, hero.name);
  const trait = pick(r, TRAITS);
  const [place, thePlace] = pick(r, PLACES);
  const [thing, thingAdj, use] = pick(r, THINGS);
  const bad = pick(r, FEELINGS_BAD);
  const good = pick(r, FEELINGS_GOOD);
  const He = cap(hero.he);
  const s: string[] = [];

  s.push(
    pick(r, [
      `Once upon a time, there was ${an(trait)} ${hero.kind} named ${hero.name}.`,
      `Once upon a time, ${an(trait)} ${hero.kind} named ${hero.name} lived in ${place}.`,
      `Once upon a time, in ${place}, there lived ${an(trait)} ${hero.kind} called ${hero.name}.`,
      `Once upon a time, there was ${an(trait)} ${hero.kind}. ${His(hero)} name was ${hero.name}.`,
    ]),
  );
  s.push(
    pick(r, [
      `${hero.name} had ${an(thingAdj)} ${thing}. ${He} loved to ${use} it every day.`,
      `${hero.name} loved ${his(hero)} ${thingAdj} ${thing} more than anything.`,
      `${He} liked to play in ${thePlace} with ${his(hero)} ${thingAdj} ${thing}.`,
      `Every day, ${hero.name} went to ${thePlace} to ${use} ${his(hero)} ${thing}.`,
    ]),
  );
  const time = pick(r, TIMES);
  const weather = pick(r, WEATHER);
  const problem = Math.floor(r() * 4);
  if (problem === 0) {
    s.push(`${time}, ${hero.name} could not find ${his(hero)} ${thing}. ${He} looked everywhere, but it was gone.`);
    s.push(`${hero.name} felt ${bad}. ${He} sat down and began to cry.`);
  } else if (problem === 1) {
    s.push(`${time}, it was very ${weather}. The wind took ${hero.name}'s ${thing} far away.`);
    s.push(`"Oh no!" said ${hero.name}. "My ${thing} is gone!"`);
  } else if (problem === 2) {
    s.push(`${time}, ${hero.name} heard ${pick(r, SOUNDS)} in ${thePlace}. ${He} was ${bad}.`);
    s.push(`"Who is there?" asked ${hero.name}. Nobody answered.`);
  } else {
    s.push(`${time}, ${hero.name} wanted to ${use} ${his(hero)} ${thing}, but it was broken.`);
    s.push(`${hero.name} was very ${bad}. "What can I do?" ${hero.he} said.`);
  }
  s.push(
    pick(r, [
      `Then ${an(friend.kind)} named ${friend.name} came by.`,
      `Just then, ${hero.name}'s friend ${friend.name} the ${friend.kind} walked up.`,
      `Soon ${friend.name}, a ${pick(r, TRAITS)} ${friend.kind}, saw ${hero.name}.`,
    ]),
  );
  s.push(
    pick(r, [
      `"Why are you ${bad}?" asked ${friend.name}.`,
      `"What is wrong, ${hero.name}?" asked ${friend.name}.`,
      `"Are you okay?" ${friend.name} asked.`,
    ]),
  );
  if (problem === 2) {
    s.push(`"I heard a noise," said ${hero.name}. "I am ${bad}."`);
    s.push(
      `"Let us look together," said ${friend.name}. They looked ${pick(r, HIDING)} and found a tiny ${pick(r, ['kitten', 'bird', 'puppy', 'bunny', 'duck'])}.`,
    );
    s.push(`It was lost and hungry, so they gave it some ${pick(r, FOODS)}.`);
  } else if (problem === 3) {
    s.push(`"My ${thing} is broken," said ${hero.name}.`);
    s.push(`"I can help you fix it," said ${friend.name}. They worked together until the ${thing} was as good as new.`);
  } else {
    s.push(`"I lost my ${thing}," said ${hero.name}.`);
    s.push(`"I will help you find it," said ${friend.name}. They looked ${pick(r, HIDING)}, and there it was!`);
  }
  s.push(
    pick(r, [
      `${hero.name} was so ${good}. "Thank you, ${friend.name}!" ${hero.he} said.`,
      `${hero.name} smiled and hugged ${friend.name}. "You are a good friend," ${hero.he} said.`,
      `"Thank you for helping me," said ${hero.name}. ${friend.name} smiled.`,
    ]),
  );
  s.push(
    pick(r, [
      `After that, they played together in ${thePlace} all day.`,
      `Then they went home and ate ${pick(r, FOODS)} together.`,
      `From that day on, ${hero.name} and ${friend.name} were best friends.`,
      `They laughed and played until the sun went down.`,
    ]),
  );
  if (r() < 0.6) {
    s.push(
      pick(r, [
        `${hero.name} learned that friends help each other.`,
        `The end.`,
        `And ${hero.name} was never ${bad} again.`,
        `${hero.name} learned that it is good to ask for help.`,
      ]),
    );
  }
  return s.join(' ');
}

const His = (c: Character) => cap(c.his);
const his = (c: Character) => c.his;

/** `count` stories from a seed; the same seed always gives the same stories. */
export function generateStoryCorpus(count: number, seed: number): string[] {
  const r = seededRandom(seed);
  return Array.from({ length: count }, () => generateStory(r));
}
