// Progressive enhancement only: every page reads without JavaScript.
"use strict";
