/* test_catalog.c -- RunPod's GPU catalog: parse, stock rule, cache key (src/core/catalog.c).
 *
 * Pure, table-driven. The catalog is foreign data: the OpenAPI example reads as documented,
 * every odd entry is skipped or kept with the odd field unknown, a type is out of stock only
 * when the catalog positively says so, and only a body that is not {"gpus": [...]} fails.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* The example of GET /v2/catalog/gpus in openapi-v2.json. */
static const char EXAMPLE[] =
    "{\"gpus\":[{\"id\":\"NVIDIA GeForce RTX 4090\",\"name\":\"RTX 4090\",\"pool\":\"ADA_24\","
    "\"manufacturer\":\"NVIDIA\",\"memory\":24,\"secure\":true,\"community\":true,"
    "\"price\":{\"secure\":0.44,\"community\":0.31,\"serverless\":1.1},"
    "\"maxCount\":{\"secure\":8,\"community\":4},\"availability\":\"HIGH\","
    "\"dataCenters\":[{\"id\":\"US-KS-2\",\"name\":\"US Kansas 2\",\"availability\":\"HIGH\"}]}]}";

static CatalogList list;

static void clear(void)
{
    catalog_list_clear(&list);
}

/* The entry of id; the test fails when there is none. */
static const CatalogEntry *entry(const char *id)
{
    static const CatalogEntry none;
    for (size_t i = 0; i < list.count; i++)
        if (strcmp(list.entries[i].id, id) == 0)
            return &list.entries[i];
    ck_abort_msg("no catalog entry %s", id);
    return &none;
}

START_TEST(test_catalog_example)
{
    char err[160] = "";
    ck_assert_int_eq(
        catalog_parse(EXAMPLE, strlen(EXAMPLE), "SECURE", NULL, 0, &list, err, sizeof err),
        STATUS_OK);
    ck_assert_uint_eq(list.count, 1);
    const CatalogEntry *e = entry("NVIDIA GeForce RTX 4090");
    ck_assert_double_eq_tol(e->price_per_hr, 0.44, 1e-9);
    ck_assert_int_eq(e->availability, GPU_LEVEL_HIGH);
    ck_assert_int_eq(e->stock, GPU_STOCK_IN);
    ck_assert(!e->partial && list.partial == 0 && list.skipped == 0);
    clear();
    ck_assert_int_eq(
        catalog_parse(EXAMPLE, strlen(EXAMPLE), "COMMUNITY", NULL, 0, &list, err, sizeof err),
        STATUS_OK);
    ck_assert_double_eq_tol(list.entries[0].price_per_hr, 0.31, 1e-9);
    clear();
    const char *dcs[] = {"EU-RO-1"};
    ck_assert_int_eq(
        catalog_parse(EXAMPLE, strlen(EXAMPLE), "SECURE", dcs, 1, &list, err, sizeof err),
        STATUS_OK);
    ck_assert_int_eq(list.entries[0].stock, GPU_STOCK_OUT); /* offered only in US-KS-2 */
    clear();
    dcs[0] = "US-KS-2";
    ck_assert_int_eq(
        catalog_parse(EXAMPLE, strlen(EXAMPLE), "SECURE", dcs, 1, &list, err, sizeof err),
        STATUS_OK);
    ck_assert_int_eq(list.entries[0].stock, GPU_STOCK_IN);
    clear();
}
END_TEST

#define GOOD_PRICE "\"price\":{\"secure\":0.5,\"community\":0.3}"

/* One entry each: kept or skipped, the fields read, and the stock on SECURE. */
static const struct {
    const char *name, *entry;
    bool kept, partial;
    double price;
    GpuStock stock;
} ENTRIES[] = {
    {"in stock", "{\"id\":\"A\",\"secure\":true," GOOD_PRICE ",\"availability\":\"LOW\"}", true,
     false, 0.5, GPU_STOCK_IN},
    {"out of stock", "{\"id\":\"A\",\"secure\":true," GOOD_PRICE ",\"availability\":\"NONE\"}",
     true, false, 0.5, GPU_STOCK_OUT},
    {"not offered on secure",
     "{\"id\":\"A\",\"secure\":false," GOOD_PRICE ",\"availability\":\"HIGH\"}", true, false, 0.5,
     GPU_STOCK_OUT},
    {"availability absent: unknown, kept", "{\"id\":\"A\",\"secure\":true," GOOD_PRICE "}", true,
     false, 0.5, GPU_STOCK_UNKNOWN},
    {"odd availability",
     "{\"id\":\"A\",\"secure\":true," GOOD_PRICE ",\"availability\":\"PLENTY\"}", true, true, 0.5,
     GPU_STOCK_UNKNOWN},
    {"availability a number", "{\"id\":\"A\",\"secure\":true," GOOD_PRICE ",\"availability\":3}",
     true, true, 0.5, GPU_STOCK_UNKNOWN},
    {"lower-case level", "{\"id\":\"A\",\"secure\":true," GOOD_PRICE ",\"availability\":\"none\"}",
     true, true, 0.5, GPU_STOCK_UNKNOWN},
    {"price missing", "{\"id\":\"A\",\"secure\":true,\"availability\":\"HIGH\"}", true, true, -1,
     GPU_STOCK_IN},
    {"price a string",
     "{\"id\":\"A\",\"secure\":true,\"price\":{\"secure\":\"0.5\"},"
     "\"availability\":\"HIGH\"}",
     true, true, -1, GPU_STOCK_IN},
    {"price negative",
     "{\"id\":\"A\",\"secure\":true,\"price\":{\"secure\":-1},"
     "\"availability\":\"HIGH\"}",
     true, true, -1, GPU_STOCK_IN},
    {"price zero",
     "{\"id\":\"A\",\"secure\":true,\"price\":{\"secure\":0},"
     "\"availability\":\"HIGH\"}",
     true, true, -1, GPU_STOCK_IN},
    {"price absurd",
     "{\"id\":\"A\",\"secure\":true,\"price\":{\"secure\":1e300},"
     "\"availability\":\"HIGH\"}",
     true, true, -1, GPU_STOCK_IN},
    {"price null", "{\"id\":\"A\",\"secure\":true,\"price\":null,\"availability\":\"HIGH\"}", true,
     true, -1, GPU_STOCK_IN},
    {"offered flag a string",
     "{\"id\":\"A\",\"secure\":\"yes\"," GOOD_PRICE ",\"availability\":\"HIGH\"}", true, true, 0.5,
     GPU_STOCK_IN},
    {"unknown extra fields are fine",
     "{\"id\":\"A\",\"secure\":true," GOOD_PRICE
     ",\"availability\":\"HIGH\",\"bogus\":{\"x\":[1,2]}}",
     true, false, 0.5, GPU_STOCK_IN},
    {"no id", "{\"secure\":true," GOOD_PRICE ",\"availability\":\"HIGH\"}", false, false, 0,
     GPU_STOCK_UNKNOWN},
    {"id a number", "{\"id\":5,\"secure\":true," GOOD_PRICE ",\"availability\":\"HIGH\"}", false,
     false, 0, GPU_STOCK_UNKNOWN},
    {"id empty", "{\"id\":\"\",\"secure\":true}", false, false, 0, GPU_STOCK_UNKNOWN},
    {"id with a newline", "{\"id\":\"A\\nB\",\"secure\":true}", false, false, 0, GPU_STOCK_UNKNOWN},
    {"not an object", "\"NVIDIA A40\"", false, false, 0, GPU_STOCK_UNKNOWN},
    {"null entry", "null", false, false, 0, GPU_STOCK_UNKNOWN},
};

START_TEST(test_catalog_entries)
{
    char body[1024], err[160];
    snprintf(body, sizeof body, "{\"gpus\":[%s]}", ENTRIES[_i].entry);
    ck_assert_int_eq(catalog_parse(body, strlen(body), "SECURE", NULL, 0, &list, err, sizeof err),
                     STATUS_OK);
    const char *name = ENTRIES[_i].name;
    ck_assert_msg(list.count == (ENTRIES[_i].kept ? 1u : 0u), "%s: count %zu", name, list.count);
    ck_assert_msg(list.skipped == (ENTRIES[_i].kept ? 0u : 1u), "%s: skipped", name);
    ck_assert_msg(list.n_problems == (ENTRIES[_i].kept && !ENTRIES[_i].partial ? 0u : 1u),
                  "%s: problems %zu", name, list.n_problems);
    if (ENTRIES[_i].kept) {
        const CatalogEntry *e = &list.entries[0];
        ck_assert_msg(e->partial == ENTRIES[_i].partial, "%s: partial", name);
        ck_assert_msg(e->price_per_hr == ENTRIES[_i].price, "%s: price %g", name, e->price_per_hr);
        ck_assert_msg(e->stock == ENTRIES[_i].stock, "%s: stock %s", name, gpu_stock_str(e->stock));
    }
    clear();
}
END_TEST

/* Bodies that are not a catalog at all fail the read (the planner then keeps its order). */
static const char *const NOT_A_CATALOG[] = {
    "",
    "{",
    "[]",
    "{\"gpus\":{}}",
    "{\"data\":[]}",
    "{\"gpus\":[{\"id\":\"A\"}]} trailing",
    "<html>502 Bad Gateway</html>",
    "null",
    "\"gpus\"",
};

START_TEST(test_catalog_not_a_catalog)
{
    char err[160] = "";
    const char *b = NOT_A_CATALOG[_i];
    ck_assert_int_eq(catalog_parse(b, strlen(b), "SECURE", NULL, 0, &list, err, sizeof err),
                     STATUS_ERR_PARSE);
    ck_assert_msg(err[0], "case %d: no message", _i);
    ck_assert_uint_eq(list.count, 0);
}
END_TEST

START_TEST(test_catalog_limits)
{
    char err[160];
    /* more entries than CATALOG_MAX_ENTRIES */
    size_t cap = (CATALOG_MAX_ENTRIES + 1) * 16 + 32, n = 0;
    char *b = malloc(cap);
    ck_assert_ptr_nonnull(b);
    n += (size_t)snprintf(b + n, cap - n, "{\"gpus\":[");
    for (int i = 0; i <= CATALOG_MAX_ENTRIES; i++)
        n += (size_t)snprintf(b + n, cap - n, "%s{\"id\":\"%d\"}", i ? "," : "", i);
    snprintf(b + n, cap - n, "]}");
    ck_assert_int_eq(catalog_parse(b, strlen(b), "SECURE", NULL, 0, &list, err, sizeof err),
                     STATUS_ERR_PARSE);
    free(b);
    /* an unknown cloud is the caller's mistake */
    ck_assert_int_eq(
        catalog_parse(EXAMPLE, strlen(EXAMPLE), "SPOT", NULL, 0, &list, err, sizeof err),
        STATUS_ERR_USAGE);
    /* deeply nested junk inside an entry does not crash */
    char deep[4096];
    n = (size_t)snprintf(deep, sizeof deep, "{\"gpus\":[{\"id\":\"A\",\"x\":");
    for (int i = 0; i < 1000 && n + 4 < sizeof deep; i++)
        deep[n++] = '[';
    deep[n] = '\0';
    ck_assert_int_eq(catalog_parse(deep, strlen(deep), "SECURE", NULL, 0, &list, err, sizeof err),
                     STATUS_ERR_PARSE);
}
END_TEST

/* Two entries with one id: agreeing fields stay, disagreeing ones become unknown. */
START_TEST(test_catalog_duplicates)
{
    const char *b = "{\"gpus\":["
                    "{\"id\":\"A\",\"secure\":true," GOOD_PRICE ",\"availability\":\"HIGH\"},"
                    "{\"id\":\"A\",\"secure\":true,\"price\":{\"secure\":0.1},"
                    "\"availability\":\"NONE\"},"
                    "{\"id\":\"B\",\"secure\":true," GOOD_PRICE ",\"availability\":\"NONE\"},"
                    "{\"id\":\"B\",\"secure\":true," GOOD_PRICE ",\"availability\":\"NONE\"}]}";
    char err[160];
    ck_assert_int_eq(catalog_parse(b, strlen(b), "SECURE", NULL, 0, &list, err, sizeof err),
                     STATUS_OK);
    ck_assert_uint_eq(list.count, 2);
    const CatalogEntry *a = entry("A"), *bb = entry("B");
    ck_assert_int_eq(a->stock, GPU_STOCK_UNKNOWN);
    ck_assert_double_eq(a->price_per_hr, -1);
    ck_assert_int_eq(bb->stock, GPU_STOCK_OUT);
    ck_assert_double_eq_tol(bb->price_per_hr, 0.5, 1e-9);
    clear();
}
END_TEST

/* The stock rule, data-center filter included. */
static const struct {
    const char *name;
    int offered;
    GpuLevel overall;
    bool filtered, dcs_present;
    GpuLevel dc;
    bool dc_unreadable;
    GpuStock want;
} STOCK[] = {
    {"high", 1, GPU_LEVEL_HIGH, false, false, GPU_LEVEL_UNKNOWN, false, GPU_STOCK_IN},
    {"low is in stock", 1, GPU_LEVEL_LOW, false, false, GPU_LEVEL_UNKNOWN, false, GPU_STOCK_IN},
    {"none", 1, GPU_LEVEL_NONE, false, false, GPU_LEVEL_UNKNOWN, false, GPU_STOCK_OUT},
    {"unknown level", 1, GPU_LEVEL_UNKNOWN, false, false, GPU_LEVEL_UNKNOWN, false,
     GPU_STOCK_UNKNOWN},
    {"offered unknown, high", -1, GPU_LEVEL_HIGH, false, false, GPU_LEVEL_UNKNOWN, false,
     GPU_STOCK_IN},
    {"not offered", 0, GPU_LEVEL_HIGH, false, false, GPU_LEVEL_UNKNOWN, false, GPU_STOCK_OUT},
    {"filter: a configured center has stock", 1, GPU_LEVEL_HIGH, true, true, GPU_LEVEL_MEDIUM,
     false, GPU_STOCK_IN},
    {"filter: configured centers NONE or unlisted", 1, GPU_LEVEL_HIGH, true, true,
     GPU_LEVEL_UNKNOWN, false, GPU_STOCK_OUT},
    {"filter: a configured center unreadable", 1, GPU_LEVEL_HIGH, true, true, GPU_LEVEL_UNKNOWN,
     true, GPU_STOCK_UNKNOWN},
    {"filter: no dataCenters, overall NONE", 1, GPU_LEVEL_NONE, true, false, GPU_LEVEL_UNKNOWN,
     false, GPU_STOCK_OUT},
    {"filter: no dataCenters, overall HIGH (odd)", 1, GPU_LEVEL_HIGH, true, false,
     GPU_LEVEL_UNKNOWN, false, GPU_STOCK_UNKNOWN},
};

START_TEST(test_catalog_stock_rule)
{
    GpuStock s = catalog_stock(STOCK[_i].offered, STOCK[_i].overall, STOCK[_i].filtered,
                               STOCK[_i].dcs_present, STOCK[_i].dc, STOCK[_i].dc_unreadable);
    ck_assert_msg(s == STOCK[_i].want, "%s: %s", STOCK[_i].name, gpu_stock_str(s));
}
END_TEST

START_TEST(test_catalog_data_centers)
{
    const char *b =
        "{\"gpus\":[{\"id\":\"A\",\"secure\":true," GOOD_PRICE ",\"availability\":\"HIGH\","
        "\"dataCenters\":[{\"id\":\"EU-RO-1\",\"availability\":\"NONE\"},"
        "{\"id\":\"US-KS-2\",\"availability\":\"LOW\"},{\"name\":\"no id\"},7]},"
        "{\"id\":\"B\",\"secure\":true," GOOD_PRICE ",\"availability\":\"HIGH\","
        "\"dataCenters\":[{\"id\":\"EU-RO-1\",\"availability\":\"LOTS\"}]},"
        "{\"id\":\"C\",\"secure\":true," GOOD_PRICE ",\"availability\":\"HIGH\","
        "\"dataCenters\":\"EU-RO-1\"}]}";
    const char *dcs[] = {"EU-RO-1", "US-KS-2"};
    char err[160];
    ck_assert_int_eq(catalog_parse(b, strlen(b), "SECURE", dcs, 2, &list, err, sizeof err),
                     STATUS_OK);
    ck_assert_int_eq(entry("A")->stock, GPU_STOCK_IN);
    ck_assert_int_eq(entry("A")->dc_level, GPU_LEVEL_LOW);
    ck_assert(entry("A")->partial); /* the two bad items */
    ck_assert_int_eq(entry("B")->stock, GPU_STOCK_UNKNOWN);
    ck_assert_int_eq(entry("C")->stock, GPU_STOCK_UNKNOWN);
    clear();
    ck_assert_int_eq(catalog_parse(b, strlen(b), "SECURE", dcs, 1, &list, err, sizeof err),
                     STATUS_OK);
    /* EU-RO-1 only: NONE there, but an item without a readable id might be EU-RO-1 in stock,
     * so the type stays a candidate rather than being skipped on a guess. */
    ck_assert_int_eq(entry("A")->stock, GPU_STOCK_UNKNOWN);
    ck_assert_int_eq(entry("B")->stock, GPU_STOCK_UNKNOWN);
    clear();
}
END_TEST

START_TEST(test_catalog_scope_key)
{
    char a[CATALOG_SCOPE_MAX], b[CATALOG_SCOPE_MAX], c[CATALOG_SCOPE_MAX];
    const char *d1[] = {"EU-RO-1", "US-KS-2"}, *d2[] = {"EU-RO-1"};
    catalog_scope("SECURE", NULL, 0, a, sizeof a);
    ck_assert_str_eq(a, "SECURE");
    catalog_scope("SECURE", d1, 2, b, sizeof b);
    catalog_scope("SECURE", d2, 1, c, sizeof c);
    ck_assert_str_ne(b, c);
    ck_assert(strncmp(b, "SECURE@", 7) == 0 && strlen(b) == 7 + 16);
    catalog_scope("COMMUNITY", d1, 2, c, sizeof c);
    ck_assert_str_ne(b, c);
    catalog_scope("SECURE", d1, 2, c, sizeof c);
    ck_assert_str_eq(b, c);
}
END_TEST

static Suite *catalog_suite(void)
{
    Suite *s = suite_create("catalog");
    TCase *tc = tcase_create("test_catalog_parse");
    tcase_add_test(tc, test_catalog_example);
    tcase_add_loop_test(tc, test_catalog_entries, 0, (int)ARRAY_LEN(ENTRIES));
    tcase_add_loop_test(tc, test_catalog_not_a_catalog, 0, (int)ARRAY_LEN(NOT_A_CATALOG));
    tcase_add_test(tc, test_catalog_limits);
    tcase_add_test(tc, test_catalog_duplicates);
    tcase_add_test(tc, test_catalog_data_centers);
    suite_add_tcase(s, tc);
    tc = tcase_create("test_catalog_stock");
    tcase_add_loop_test(tc, test_catalog_stock_rule, 0, (int)ARRAY_LEN(STOCK));
    tcase_add_test(tc, test_catalog_scope_key);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(catalog_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
