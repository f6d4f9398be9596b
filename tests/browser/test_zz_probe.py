import time
T=time.perf_counter()
def test_probe(live_app):
    print("live_app ready", time.perf_counter()-T)
def test_probe2(browser, live_app):
    t=time.perf_counter()
    ctx=browser.new_context(); p=ctx.new_page(); p.goto(live_app.url+"/")
    print("goto", time.perf_counter()-t)
    from playwright.sync_api import expect
    expect(p.locator("#status")).to_contain_text("models ranked", timeout=30000)
    print("status", time.perf_counter()-t)
    ctx.close()
    t=time.perf_counter()
    ctx=browser.new_context(); p=ctx.new_page(); p.goto(live_app.url+"/")
    print("goto2", time.perf_counter()-t)
    expect(p.locator("#status")).to_contain_text("models ranked", timeout=30000)
    print("status2", time.perf_counter()-t)
