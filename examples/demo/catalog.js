'use strict'
// The shop's seed catalog: 50 items in five categories, the featured picks and the combos (sets
// of items; a visitor who has viewed every item of a set is offered the set).

const CATEGORIES = {
  coffee: 'Coffee',
  tea: 'Tea',
  brewing: 'Brewing gear',
  books: 'Books',
  snacks: 'Snacks'
}

// [id, title, score]: the score is the shop's own ranking (popularity, margin...): SURFACE mixes
// it with the visitor's interests.
const SEED = {
  coffee: [
    ['coffee-ethiopia', 'Ethiopia Yirgacheffe, 250 g', 92], ['coffee-kenya', 'Kenya AA, 250 g', 81],
    ['coffee-colombia', 'Colombia Huila, 250 g', 77], ['coffee-brazil', 'Brazil Cerrado, 500 g', 64],
    ['coffee-guatemala', 'Guatemala Antigua, 250 g', 58], ['coffee-sumatra', 'Sumatra Mandheling, 250 g', 49],
    ['coffee-decaf', 'Swiss-water decaf, 250 g', 33], ['coffee-espresso', 'House espresso blend, 1 kg', 88],
    ['coffee-rwanda', 'Rwanda Nyamasheke, 250 g', 41], ['coffee-panama', 'Panama Geisha, 100 g', 70]
  ],
  tea: [
    ['tea-sencha', 'Japanese sencha, 100 g', 85], ['tea-matcha', 'Ceremonial matcha, 30 g', 90],
    ['tea-assam', 'Assam breakfast, 250 g', 52], ['tea-darjeeling', 'Darjeeling first flush, 100 g', 67],
    ['tea-oolong', 'Tieguanyin oolong, 100 g', 61], ['tea-puerh', 'Aged pu-erh cake, 357 g', 38],
    ['tea-earlgrey', 'Earl Grey, 250 g', 73], ['tea-chamomile', 'Chamomile flowers, 50 g', 29],
    ['tea-rooibos', 'Rooibos vanilla, 100 g', 44], ['tea-jasmine', 'Jasmine pearls, 100 g', 56]
  ],
  brewing: [
    ['gear-dripper', 'Ceramic pour-over dripper', 80], ['gear-filters', 'Paper filters, 100', 45],
    ['gear-kettle', 'Gooseneck kettle', 86], ['gear-grinder', 'Burr grinder', 94],
    ['gear-scale', 'Brewing scale', 62], ['gear-frenchpress', 'French press, 1 l', 57],
    ['gear-moka', 'Moka pot, 6 cups', 50], ['gear-whisk', 'Bamboo matcha whisk', 47],
    ['gear-bowl', 'Matcha bowl', 42], ['gear-teapot', 'Cast-iron teapot', 66]
  ],
  books: [
    ['book-atlas', 'The World Atlas of Coffee', 78], ['book-tea', 'The Story of Tea', 63],
    ['book-barista', 'The Professional Barista', 55], ['book-roasting', 'Home Roasting', 40],
    ['book-ceremony', 'The Way of Tea', 51], ['book-water', 'Water for Coffee', 30],
    ['book-chemistry', 'Coffee Chemistry', 35], ['book-travel', 'Tea Gardens of Asia', 46],
    ['book-cocktails', 'Coffee Cocktails', 39], ['book-baking', 'Baking for Tea Time', 58]
  ],
  snacks: [
    ['snack-biscotti', 'Almond biscotti', 71], ['snack-shortbread', 'Butter shortbread', 65],
    ['snack-mochi', 'Matcha mochi', 48], ['snack-chocolate', 'Dark chocolate 70%', 83],
    ['snack-stroopwafel', 'Stroopwafels', 60], ['snack-scones', 'Scone mix', 37],
    ['snack-macarons', 'Macarons, 12', 54], ['snack-nuts', 'Roasted nuts', 43],
    ['snack-cantucci', 'Cantucci', 36], ['snack-madeleines', 'Madeleines', 52]
  ]
}

const ITEMS = []
for (const [category, list] of Object.entries(SEED)) {
  for (const [id, title, score] of list) ITEMS.push({ id, title, score, category })
}

// Hand-picked; SURFACE ... ITEMS shows the ones the visitor has not seen yet.
const FEATURED = ['gear-grinder', 'tea-matcha', 'coffee-panama', 'book-atlas', 'snack-chocolate',
  'gear-teapot', 'tea-oolong', 'coffee-espresso']

const COMBOS = [
  { id: 'pour-over', title: 'The pour-over set', discount: 15, items: ['gear-dripper', 'gear-filters', 'gear-kettle'] },
  { id: 'matcha', title: 'The matcha ceremony set', discount: 20, items: ['tea-matcha', 'gear-whisk', 'gear-bowl'] },
  { id: 'fika', title: 'The fika box', discount: 10, items: ['coffee-espresso', 'snack-biscotti', 'snack-chocolate'] }
]

module.exports = { CATEGORIES, ITEMS, FEATURED, COMBOS }
