WITH "vo" AS (
  SELECT
    *
  FROM "orders" AS "o"
  WHERE
    "o"."created_at" IS NULL OR "o"."created_at" <= '2026-06-30 23:59:59.999999'
), "ve" AS (
  SELECT
    *
  FROM "events" AS "e"
  WHERE
    "e"."at" IS NULL OR "e"."at" <= '2026-06-30 23:59:59.999999'
), "i_agg" AS (
  SELECT
    "o"."customer_id" AS "customer_id",
    JSON_GROUP_ARRAY(DISTINCT "i"."category") FILTER(WHERE
      NOT "i"."category" IS NULL) AS "a0"
  FROM "order_items" AS "i"
  INNER JOIN "vo" AS "o"
    ON "i"."order_id" = "o"."id"
  GROUP BY
    "o"."customer_id"
), "ids" AS (
  SELECT
    "id" AS "customer_id"
  FROM "customers"
  UNION
  SELECT
    "customer_id"
  FROM "i_agg"
)
SELECT
  "ids"."customer_id" AS "customer_id"
FROM "ids"
LEFT JOIN "customers" AS "c"
  ON "c"."id" = "ids"."customer_id"
LEFT JOIN "i_agg"
  ON "i_agg"."customer_id" = "ids"."customer_id"
WHERE
  NOT "ids"."customer_id" IS NULL
  AND (
    "c"."registered_at" IS NULL
    OR "c"."registered_at" <= '2026-06-30 23:59:59.999999'
  )
  AND (
    SUBSTR(LOWER("c"."country"), 1, LENGTH('p')) = 'p'
    AND INSTR("c"."email", '@') > 0
    AND "c"."email" REGEXP '^[Aa]'
    AND COALESCE(
      EXISTS(
        SELECT
          1
        FROM JSON_EACH(COALESCE("i_agg"."a0", '[]'))
        WHERE
          value = 'coat'
      ),
      0
    )
    AND JSON_ARRAY_LENGTH("c"."tags") > 1
  )
