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
), "top0" AS (
  SELECT
    "customer_id",
    "value"
  FROM (
    SELECT
      "o"."customer_id" AS "customer_id",
      CRM_MONEY("o"."total", 'orders.total') AS "value",
      ROW_NUMBER() OVER (
        PARTITION BY "o"."customer_id"
        ORDER BY "o"."created_at" ASC NULLS LAST, COALESCE("o"."id", '') NULLS LAST, CRM_MONEY("o"."total", 'orders.total') NULLS LAST
      ) AS "rn"
    FROM "vo" AS "o"
    WHERE
      NOT "o"."created_at" IS NULL
      AND NOT CRM_MONEY("o"."total", 'orders.total') IS NULL
      AND "o"."status" = 'paid'
  ) AS "ranked"
  WHERE
    "rn" = 1
), "top1" AS (
  SELECT
    "customer_id",
    "value"
  FROM (
    SELECT
      "o"."customer_id" AS "customer_id",
      "o"."channel" AS "value",
      ROW_NUMBER() OVER (
        PARTITION BY "o"."customer_id"
        ORDER BY "o"."created_at" DESC, COALESCE("o"."id", '') NULLS LAST, "o"."channel" NULLS LAST
      ) AS "rn"
    FROM "vo" AS "o"
    WHERE
      NOT "o"."created_at" IS NULL AND NOT "o"."channel" IS NULL
  ) AS "ranked"
  WHERE
    "rn" = 1
), "others" AS (
  SELECT
    "customer_id" AS "customer_id"
  FROM (
    SELECT
      "customer_id"
    FROM "vo"
    UNION
    SELECT
      "customer_id"
    FROM "ve"
  ) AS "u"
), "ids" AS (
  SELECT
    "id" AS "customer_id"
  FROM "customers"
  UNION
  SELECT
    "customer_id"
  FROM "top0"
  UNION
  SELECT
    "customer_id"
  FROM "top1"
  UNION
  SELECT
    "customer_id"
  FROM "others"
)
SELECT
  "ids"."customer_id" AS "customer_id"
FROM "ids"
LEFT JOIN "customers" AS "c"
  ON "c"."id" = "ids"."customer_id"
LEFT JOIN "top0"
  ON "top0"."customer_id" = "ids"."customer_id"
LEFT JOIN "top1"
  ON "top1"."customer_id" = "ids"."customer_id"
LEFT JOIN "others"
  ON "others"."customer_id" = "ids"."customer_id"
WHERE
  NOT "ids"."customer_id" IS NULL
  AND (
    "c"."registered_at" IS NULL
    OR "c"."registered_at" <= '2026-06-30 23:59:59.999999'
  )
  AND (
    CRM_HASH32((
      'ab:' || "c"."id"
    )) % 3 = 0
    AND CAST(JULIANDAY(
      DATE(
        CASE
          WHEN DATE(
            PRINTF(
              '%04d-%02d-%02d',
              2026,
              CAST(STRFTIME('%m', DATE("c"."birthday")) AS INTEGER),
              CASE
                WHEN CAST(STRFTIME('%m', DATE("c"."birthday")) AS INTEGER) = 2
                AND CAST(STRFTIME('%d', DATE("c"."birthday")) AS INTEGER) = 29
                THEN 28
                ELSE CAST(STRFTIME('%d', DATE("c"."birthday")) AS INTEGER)
              END
            )
          ) < '2026-06-30'
          THEN DATE(
            PRINTF(
              '%04d-%02d-%02d',
              2027,
              CAST(STRFTIME('%m', DATE("c"."birthday")) AS INTEGER),
              CASE
                WHEN CAST(STRFTIME('%m', DATE("c"."birthday")) AS INTEGER) = 2
                AND CAST(STRFTIME('%d', DATE("c"."birthday")) AS INTEGER) = 29
                THEN 28
                ELSE CAST(STRFTIME('%d', DATE("c"."birthday")) AS INTEGER)
              END
            )
          )
          ELSE DATE(
            PRINTF(
              '%04d-%02d-%02d',
              2026,
              CAST(STRFTIME('%m', DATE("c"."birthday")) AS INTEGER),
              CASE
                WHEN CAST(STRFTIME('%m', DATE("c"."birthday")) AS INTEGER) = 2
                AND CAST(STRFTIME('%d', DATE("c"."birthday")) AS INTEGER) = 29
                THEN 28
                ELSE CAST(STRFTIME('%d', DATE("c"."birthday")) AS INTEGER)
              END
            )
          )
        END
      )
    ) - JULIANDAY('2026-06-30') AS INTEGER) < 7
    AND 63 <= 30
    AND "top0"."value" > 100000000
    AND "top1"."value" = 'app'
  )
