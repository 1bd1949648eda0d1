WITH "vo" AS (
  SELECT
    *
  FROM "orders" AS "o"
  WHERE
    "o"."created_at" IS NULL
    OR "o"."created_at" <= CAST('2026-06-30 23:59:59.999999' AS TIMESTAMP)
), "ve" AS (
  SELECT
    *
  FROM "events" AS "e"
  WHERE
    "e"."at" IS NULL OR "e"."at" <= CAST('2026-06-30 23:59:59.999999' AS TIMESTAMP)
), "i_agg" AS (
  SELECT
    "o"."customer_id" AS "customer_id",
    LIST(DISTINCT "i"."category") FILTER(WHERE
      NOT "i"."category" IS NULL) AS "a0"
  FROM "order_items" AS "i"
  INNER JOIN "vo" AS "o"
    ON "i"."order_id" = "o"."id"
  GROUP BY
    "o"."customer_id"
)
SELECT
  COALESCE("c"."id", "i_agg"."customer_id") AS "customer_id"
FROM "customers" AS "c"
FULL JOIN "i_agg"
  ON "i_agg"."customer_id" = "c"."id"
WHERE
  NOT COALESCE("c"."id", "i_agg"."customer_id") IS NULL
  AND (
    "c"."registered_at" IS NULL
    OR "c"."registered_at" <= CAST('2026-06-30 23:59:59.999999' AS TIMESTAMP)
  )
  AND (
    STARTS_WITH(
      CASE
        WHEN STRLEN("c"."country") = LENGTH("c"."country")
        THEN LOWER("c"."country")
        ELSE CRM_LOWER("c"."country")
      END,
      'p'
    )
    AND STRPOS("c"."email", '@') > 0
    AND REGEXP_MATCHES("c"."email", '^[Aa]')
    AND LIST_CONTAINS(COALESCE("i_agg"."a0", CAST([] AS TEXT[])), 'coat')
    AND LEN("c"."tags") > 1
  )
