// Drives Debian's chromium through the Compliance → SOC 2 page served by soc2-operator:
//   node dashboard.mjs URL OUT_DIR        prints what it saw as one JSON object
import { chromium } from "playwright-core";

const [url, out] = process.argv.slice(2);
const origin = new URL(url).origin;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
try {
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1360, height: 900 } });
  const page = await context.newPage();
  const outside = [];
  page.on("request", (r) => {
    const u = r.url();
    if (!u.startsWith(origin) && !u.startsWith("blob:") && !u.startsWith("data:")) outside.push(u);
  });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));

  await page.goto(url);
  await page.waitForFunction(() => document.querySelectorAll("#rows tr").length > 0 && document.querySelector("#trend svg"));
  const rows = await page.$$eval("#rows tr", (trs) => trs.map((tr) => [tr.dataset.id, tr.querySelector(".cell-state").textContent.trim()]));

  // Keyboard only: focus a row, Enter opens its drawer.
  await page.focus('tr[data-id="CC6.6"]');
  await page.keyboard.press("Enter");
  await page.waitForSelector("#drawer:not([hidden])");
  const drawer = {
    title: await page.textContent("#drawer-title"),
    query: await page.textContent("#drawer-query"),
    parameters: await page.textContent("#drawer-params"),
    events: await page.$$eval("#drawer-events tr", (trs) => trs.map((tr) => tr.children[1].textContent)),
    focused: await page.evaluate(() => document.activeElement.id),
  };

  const save = async (selector) => {
    const [download] = await Promise.all([page.waitForEvent("download"), page.click(selector)]);
    const path = `${out}/${download.suggestedFilename()}`;
    await download.saveAs(path);
    return path;
  };
  const supportingCsv = await save("#download-csv");
  const supportingJson = await save("#download-json");
  await page.screenshot({ path: `${out}/dashboard-drawer.png` });

  // Escape closes the drawer and gives focus back to the row.
  await page.keyboard.press("Escape");
  const closed = await page.evaluate(() => document.getElementById("drawer").hidden);
  const refocused = await page.evaluate(() => document.activeElement.dataset.id);

  const exportJson = await save('[data-export="json"]');
  const exportPdf = await save('[data-export="pdf"]');
  await page.click("#refresh");
  await page.waitForFunction(() => document.getElementById("status").textContent.startsWith("Updated"));
  await page.screenshot({ path: `${out}/dashboard.png`, fullPage: true });
  const trendCells = await page.$$eval("#trend svg rect", (r) => r.length);

  console.log(JSON.stringify({ rows, drawer, supportingCsv, supportingJson, closed, refocused, exportJson, exportPdf, trendCells, outside, errors }));
} finally {
  await browser.close();
}
