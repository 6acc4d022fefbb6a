document.querySelector("h1").title = "mirrored at " + new Date().toISOString();
