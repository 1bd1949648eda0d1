WITH `vo` AS (
  SELECT
    *
  FROM `orders` AS `o`
  WHERE
    `o`.`created_at` IS NULL
    OR `o`.`created_at` <= CAST('2026-06-30 23:59:59.999999' AS DATETIME)
), `ve` AS (
  SELECT
    *
  FROM `events` AS `e`
  WHERE
    `e`.`at` IS NULL OR `e`.`at` <= CAST('2026-06-30 23:59:59.999999' AS DATETIME)
)
SELECT
  `c`.`id` AS `customer_id`
FROM `customers` AS `c`
WHERE
  NOT `c`.`id` IS NULL
  AND (
    `c`.`registered_at` IS NULL
    OR `c`.`registered_at` <= CAST('2026-06-30 23:59:59.999999' AS DATETIME)
  )
  AND (
    (
      `c`.`points` > 100
      AND CASE
        WHEN `c`.`tags` IS NULL
        THEN NULL
        ELSE COALESCE(
          EXISTS(
            SELECT
              1
            FROM UNNEST(`c`.`tags`) AS element
            WHERE
              element = 'coat'
          ),
          FALSE
        )
      END
      AND DATE_DIFF(CAST('2026-06-30' AS DATE), CAST(`c`.`registered_at` AS DATE), DAY) < 30
    )
    OR (
      `c`.`age` < 20 AND `c`.`gender` = 'female'
    )
  )
